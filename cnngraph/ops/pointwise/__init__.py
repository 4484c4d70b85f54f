"""relu, leaky_relu, sigmoid, tanh, identity, relu6, elu, gelu, silu (alias swish), hardswish,
hardsigmoid: element-wise ops, one row each, with PyTorch's definitions.

    - relu
    - leaky_relu: {slope: 0.1}
    - elu: {alpha: 1.0}
    - gelu: {approximate: tanh}     # `none` (the default) is the exact erf form
    - swish                         # silu under its other name

Each row gives the op's arguments, the forward expression (in `x`, the scalar argument `a`, the
constants of `CONSTANTS`, which the kernels define in the array's dtype: a bare `0` would promote
float32 to float64, and the functions `sigmoid`, `tanh`, `exp`, `expm1` and `erf`, which each
backend defines for its kernels), the backward expression (also in `y` and `dy`), the tensor the
backward reads, and the cost per element under the full policy: relu 1 (max), leaky_relu 2
(compare, multiply), sigmoid 4 (negate, exp, add, divide), tanh 5, identity 0, relu6 2 (max,
min), elu 3 (compare, expm1, multiply), gelu 5 (multiply, erf, add, multiply, multiply) or with
`approximate: tanh` 9 (cube: 2, multiply-add 2, multiply, tanh, add, multiply, multiply), silu 5
(sigmoid, multiply), hardswish 5 (add, max, min, multiply, divide), hardsigmoid 4 (add, max,
min, divide). The backends generate their kernels from these expressions. A derivative jumps at
each of `kinks` (a gradient check leaves out probes across them); where two jumps coincide with
PyTorch's one-sided choice (relu6's 0 at 0 and at 6, hardswish's x/3 + 1/2 on the closed
[-3, 3]), the backward expression takes the same side.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..base import Cost, OpDef, numel, object_schema, same_shape
from .lower import lowering


@dataclass(frozen=True)
class LeakyReluAttrs:
    slope: float = 0.01


@dataclass(frozen=True)
class EluAttrs:
    alpha: float = 1.0


@dataclass(frozen=True)
class GeluAttrs:
    approximate: str = "none"

    @property
    def tanh_form(self) -> float:
        """The kernels' argument: 1 for the tanh approximation, 0 for the exact erf form."""
        return 1.0 if self.approximate == "tanh" else 0.0


# Constants the expressions may name; each kernel defines them in its array's dtype.
CONSTANTS = {"zero": 0.0, "one": 1.0, "half": 0.5, "three": 3.0, "six": 6.0,
             "sqrt_half": math.sqrt(0.5), "inv_sqrt_2pi": 1 / math.sqrt(2 * math.pi),
             "sqrt_2_over_pi": math.sqrt(2 / math.pi), "gelu_cubic": 0.044715}


@dataclass(frozen=True)
class Row:
    name: str
    forward: str
    backward: str
    ops_per_element: int | Callable[[object], int]   # per element, given the attrs
    reads: tuple[str, ...]   # what the backward expression reads: input or output
    schema: dict
    attrs: object
    argument: str = ""   # the attribute passed to the kernels as `a`
    rectifier: bool = False
    kink: Callable | None = None


def _kink_at_zero(node, x, winners):
    """The ReLU family's kink is at 0: an input's distance from it is the input itself."""
    return x, None


def _kinks_at(*points: float) -> Callable:
    """The kink of a derivative that jumps at each of `points` (ascending): an input's distance
    from the nearest, its sign flipping at each point, so that a probe across any of them is
    seen crossing."""
    def kink(node, x, winners):
        distance = np.min([np.abs(x - p) for p in points], axis=0)
        return np.where(np.sum([x > p for p in points], axis=0) % 2 == 1, distance,
                        -distance), None
    return kink


def _elu_kink(node, x, winners):
    """elu's derivative is continuous at 0 only when alpha is 1 (PyTorch's exp side: alpha)."""
    return (x if node.attrs.alpha != 1.0 else np.full_like(x, np.inf)), None


# He init suits rectifiers: relu6 is one. elu, gelu, silu and the hard ones are not marked: Keras
# and torchvision train networks of them (EfficientNet, MobileNetV3, ViT) from their layers'
# default (Glorot / Kaiming-uniform with a=sqrt(5)) init, not He normal, and their negative side
# is not zero, which is He's assumption.
SILU = Row("silu", "x * sigmoid(x)", "dy * (sigmoid(x) * (one + x * (one - sigmoid(x))))", 5,
           ("input",), {}, lambda args: None)


# relu and leaky_relu scale x by a factor chosen by its sign: the same values as `x if x > zero
# else x * zero` (NaN stays NaN, a negative x gives -0.0), but a select of constants, which
# vectorises, where that branch did not (1.2M float32 values: 0.57 -> 0.11 ms, one thread).
ROWS = (
    Row("relu", "x * (one if x > zero else zero)", "dy if y > zero else dy * zero", 1,
        ("output",), {}, lambda args: None, rectifier=True, kink=_kink_at_zero),
    Row("leaky_relu", "x * (one if x > zero else a)", "dy if x > zero else a * dy", 2, ("input",),
        {"slope": {"type": "number", "minimum": 0}},
        lambda args: LeakyReluAttrs(args.get("slope", 0.01)), "slope", rectifier=True,
        kink=_kink_at_zero),
    Row("sigmoid", "sigmoid(x)", "dy * y * (one - y)", 4, ("output",), {}, lambda args: None),
    Row("tanh", "tanh(x)", "dy * (one - y * y)", 5, ("output",), {}, lambda args: None),
    Row("identity", "x", "dy", 0, (), {}, lambda args: None),
    # From its output, exactly: 0 < y < 6 where 0 < x < 6; so it fuses into conv and dense.
    Row("relu6", "min(max(x, zero), six)", "dy if zero < y < six else dy * zero", 2, ("output",),
        {}, lambda args: None, rectifier=True, kink=_kinks_at(0.0, 6.0)),
    Row("elu", "x if x > zero else a * expm1(x)", "dy if x > zero else dy * a * exp(x)", 3,
        ("input",), {"alpha": {"type": "number"}},
        lambda args: EluAttrs(args.get("alpha", 1.0)), "alpha", kink=_elu_kink),
    Row("gelu",
        "half * x * (one + (erf(x * sqrt_half) if a == zero else tanh(sqrt_2_over_pi * "
        "(x + gelu_cubic * x * x * x))))",
        "dy * ((half * (one + erf(x * sqrt_half)) + x * inv_sqrt_2pi * exp(-half * x * x)) "
        "if a == zero else (half * (one + tanh(sqrt_2_over_pi * (x + gelu_cubic * x * x * x)))"
        " + half * x * (one - tanh(sqrt_2_over_pi * (x + gelu_cubic * x * x * x)) ** 2)"
        " * sqrt_2_over_pi * (one + three * gelu_cubic * x * x)))",
        lambda attrs: 9 if attrs.approximate == "tanh" else 5, ("input",),
        {"approximate": {"enum": ["none", "tanh"]}},
        lambda args: GeluAttrs(args.get("approximate", "none")), "tanh_form"),
    SILU,
    replace(SILU, name="swish"),
    Row("hardswish", "x * min(max(x + three, zero), six) / six",
        "dy * zero if x < -three else (dy * (x / three + half) if x <= three else dy)", 5,
        ("input",), {}, lambda args: None, kink=_kinks_at(-3.0, 3.0)),
    # Not from its output: rounding can turn 3 - ulp's output into 1, whose slope would be 0.
    Row("hardsigmoid", "min(max(x + three, zero), six) / six",
        "dy / six if -three < x < three else dy * zero", 4, ("input",), {}, lambda args: None,
        kink=_kinks_at(-3.0, 3.0)),
)


def _op(row: Row) -> OpDef:
    k = row.ops_per_element
    return OpDef(package=__name__, name=row.name, doc=__doc__,
                 schema=object_schema(row.schema), attrs=row.attrs,
                 shape=same_shape, rectifier=row.rectifier, kink=row.kink, lower=lowering(row),
                 cost=lambda a, ins, out: Cost(ops=(k(a) if callable(k) else k) * numel(out)))


OPS = tuple(_op(row) for row in ROWS)
