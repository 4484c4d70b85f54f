"""batchnorm: batch normalisation over channels of a (C, H, W) map, or features of a vector.

    - batchnorm
    - batchnorm: {eps: 0.001, momentum: 0.01}

`momentum` follows PyTorch: running = (1 - momentum) * running + momentum * batch statistic.
Parameters weight and bias (C,); buffers running_mean and running_var (C,), not trainable.
Cost (full policy): 2 ops per element (scale and shift, the inference form).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, ShapeError, fmt_shape, numel, object_schema
from .lower import lower


@dataclass(frozen=True)
class BatchNormAttrs:
    eps: float = 1e-5
    momentum: float = 0.1


def shape(a, ins):
    if len(ins[0]) not in (1, 3):
        raise ShapeError(f"`batchnorm` expected (C, H, W) or (features,), received "
                         f"{fmt_shape(ins[0])}")
    return ins[0]


def lint(a, ins):
    """Keras's `momentum` is the weight of the old running statistic (0.99), PyTorch's the
    weight of the new batch (0.1): a value above 0.5 is very likely meant the Keras way."""
    if a.momentum <= 0.5:
        return []
    return [(f"`batchnorm` momentum {a.momentum:g} keeps only {1 - a.momentum:.2g} of the "
             f"running statistics per step (cnngraph uses PyTorch's convention)",
             f"expected a small value such as 0.1, received {a.momentum:g}: Keras's momentum "
             f"{a.momentum:g} is `momentum: {1 - a.momentum:.2g}` here")]


def _channels(a, ins):
    return {"weight": (ins[0][0],), "bias": (ins[0][0],)}


def _buffers(a, ins):
    return {"running_mean": (ins[0][0],), "running_var": (ins[0][0],)}


OP = OpDef(
    package=__name__, lower=lower,
    name="batchnorm", doc=__doc__,
    schema=object_schema({"eps": {"type": "number", "exclusiveMinimum": 0},
                          "momentum": {"type": "number", "minimum": 0, "maximum": 1}}),
    attrs=lambda args: BatchNormAttrs(args.get("eps", 1e-5), args.get("momentum", 0.1)),
    shape=shape, params=_channels, buffers=_buffers, lint=lint,
    init=lambda a, default: {"weight": 1.0, "bias": 0.0,
                             "running_mean": 0.0, "running_var": 1.0},
    decay_exempt=("weight", "bias"), folds_into=("conv",), fuses_activation=True,
    cost=lambda a, ins, out: Cost(ops=2 * numel(out)),
)
