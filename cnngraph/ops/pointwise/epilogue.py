"""An activation fused into the conv, dense or batch-norm layer before it (`passes/fuse.py`), as
the data the producer's lowering adds, on every target.

Forward, the producer's kernel applies the activation in its output loop: `args` (the
activation's code `act`, 0 for none, and its argument `act_arg`) join the forward call's
arguments. Backward, ahead of the producer's own backward, `pointwise_bwd_<target>` turns dy into
the gradient of the raw output (from the saved output: a fused activation's derivative reads
only its output) in a workspace, and the producer's backward reads `dy` in place of DY.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..lowering import DY, Arg, Call, Ref, Scratch, Y, scratch
from . import ROWS
from .lower import BACKWARD

# The rows that can be fused (passes/fuse.py): those whose derivative reads only their output.
# Their codes are their places in ROWS (0: no activation), so a new row changes no old code.
FUSED = tuple(row for row in ROWS if set(row.reads) <= {"output"})
CODES = {row.name: code for code, row in enumerate(ROWS, start=1) if row in FUSED}


@dataclass(frozen=True)
class Epilogue:
    args: dict[str, Arg]                 # joins the producer's forward call's arguments
    dy: Ref = DY                         # the gradient the producer's own backward reads
    backward: tuple[Call, ...] = ()      # calls ahead of the producer's own backward
    scratch: dict[str, Scratch] = field(default_factory=dict)
    reads: tuple[str, ...] = ()          # tensors those calls read


def epilogue(node) -> Epilogue:
    """What the activation fused into `node` (if any) adds to its lowering."""
    if node.activation is None:
        return Epilogue({"act": 0, "act_arg": 0.0})
    name, argument = node.activation
    raw = scratch("d_raw")
    return Epilogue(
        {"act": CODES[name], "act_arg": argument}, dy=raw,
        backward=(Call(BACKWARD, {"op": name, "x": Y, "y": Y, "dy": DY, "dx": raw,
                                  "argument": argument}),),
        scratch={"d_raw": Scratch(node.shape, per_sample=True, backward_only=True)},
        reads=("output",))
