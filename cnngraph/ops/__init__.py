"""The op registry: every op the spec language knows, by its one name.

Adding an op: write its module (contract: `base.OpDef`), add one import line below.
"""
from __future__ import annotations

from . import (
    add,
    batchnorm,
    concat,
    conv,
    dense,
    dropout,
    flatten,
    lrn,
    mul,
    pointwise,
    pooling,
    softmax,
)
from .base import OpDef

REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> None:
    if op.name in REGISTRY:
        raise ValueError(f"op `{op.name}` is registered twice")
    REGISTRY[op.name] = op


for _op in (conv.OP, dense.OP, batchnorm.OP, dropout.OP, lrn.OP, softmax.OP, flatten.OP,
            add.OP, concat.OP, mul.OP, *pooling.OPS, *pointwise.OPS):
    register(_op)

MERGES = ("add", "concat", "mul")


def nearest(name: str, candidates) -> str:
    """' (did you mean `x`?)' for the closest known name, or ''."""
    # imported on a user's error only: at start-up it cost 10-20 ms of every run (measured)
    import difflib
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""
