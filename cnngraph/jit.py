"""The ground floor every generated kernel stands on: where generated source is cached, and how
it is imported so that Numba's on-disk cache finds it again."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("CNNGRAPH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cnngraph")
    return Path(root)


def load_module(source: str, stem: str):
    """Import generated source from a content-addressed file (written once, atomically; it is
    registered in sys.modules before it runs, as Numba's cache needs). Its bytecode is written
    with it, even where PYTHONDONTWRITEBYTECODE keeps Python from caching it: compiling the
    generated modules again would cost every start (bench/results/runtime.md)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"cnngraph_gen_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    folder = cache_dir() / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
        import py_compile
        py_compile.compile(str(path), importlib.util.cache_from_source(str(path)), doraise=True)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # None: a suffix no loader reads
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
