"""The op registry: every op the spec language knows, by its one name.

Adding an op: write its folder (contract: `base.OpDef`; the folder's `__init__` defines `OP`,
or `OPS` where it holds several ops), and add its name to the import below: one line.
"""
from __future__ import annotations

from types import ModuleType

from . import (
    adaptive_avgpool,
    add,
    batchnorm,
    channel_shuffle,
    concat,
    conv,
    dense,
    dropout,
    flatten,
    locally_connected,
    lrn,
    mul,
    pointwise,
    pooling,
    prelu,
    slice,
    softmax,
    upsample,
    zero_pad,
)
from .base import OpDef

REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> None:
    if op.name in REGISTRY:
        raise ValueError(f"op `{op.name}` is registered twice")
    REGISTRY[op.name] = op


def _folder_ops(module: ModuleType) -> tuple[OpDef, ...]:
    return getattr(module, "OPS", None) or (module.OP,)


for _module in sorted((m for m in list(globals().values()) if isinstance(m, ModuleType)
                       and (hasattr(m, "OP") or hasattr(m, "OPS"))), key=lambda m: m.__name__):
    for _op in _folder_ops(_module):
        register(_op)

# ops of more than one input: what a `merge:` may name
MERGES = tuple(name for name, op in REGISTRY.items() if op.arity != 1)


def nearest(name: str, candidates) -> str:
    """' (did you mean `x`?)' for the closest known name, or ''."""
    # imported on a user's error only: at start-up it slowed every run (bench/results/runtime.md)
    import difflib
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""
