"""Leaf kernel libraries shared by the ops: BLAS, im2col, reductions (per target).

Importing this package (every kernel module does, before its first `@njit`) makes the disk
cache entries of cnngraph's kernels depend on the sources of all of them. Numba checks only the
file of the function it compiled, yet a kernel's machine code includes every function it calls
from other files: after an edit to winograd.py, `_winograd_fwd` (conv/cpu.py) kept running the
old transforms from a warm cache while a cold one ran the new, and the same seed gave weights
1.8e-7 apart (measured, issue 17). Any edit to a kernel source now recompiles them all once.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching

_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl   # (renamed in 0.6x)

_PACKAGE = Path(__file__).resolve().parent.parent
GENERATED_PREFIX = "cnngraph_gen_"      # generated kernel modules (runtime/codegen.py)


def _sources_digest() -> str:
    """A digest of every kernel source: the shared libraries and each op's kernels (the
    generated modules are named by a digest of their own text already)."""
    digest = hashlib.sha256()
    files = [*(_PACKAGE / "kernels").rglob("*.py"), *(_PACKAGE / "ops").rglob("*.py")]
    for path in sorted(files):
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


SOURCES = _sources_digest()


class _KernelLocator(caching._CacheLocator):
    """Numba's own locator for a kernel's file, with the kernel sources' digest added to the
    file's stamp: an entry made from other sources no longer matches and is recompiled."""

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return self._inner.get_source_stamp(), SOURCES

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @property
    def _py_file(self):
        """The kernel's file: Numba names it in its warning about a kernel it cannot cache."""
        return self._inner._py_file

    @classmethod
    def from_function(cls, py_func, py_file):
        path = Path(py_file).resolve()
        if _PACKAGE not in path.parents and not path.name.startswith(GENERATED_PREFIX):
            return None
        for locator in _IMPL._locator_classes:
            inner = None if locator is cls else locator.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None


if _KernelLocator not in _IMPL._locator_classes:
    _IMPL._locator_classes.insert(0, _KernelLocator)
