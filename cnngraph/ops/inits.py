"""Weight initialisation schemes, by the name a layer's `init` argument gives (conv, dense).

He scales by fan_in, Glorot by fan_in + fan_out; fans follow PyTorch: fan_in = in/groups * kh *
kw, fan_out = out * kh * kw, from the weight's (out, in/groups, ...) shape. Each scheme draws in
float32 straight into the weight's array (`cnngraph.passes.init` says why).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _normal(std: Callable[[int, int], float]):
    def draw(rng, values: np.ndarray, fan_in: int, fan_out: int) -> None:
        rng.standard_normal(dtype=np.float32, out=values)
        values *= std(fan_in, fan_out)
    return draw


def _uniform(bound_of: Callable[[int, int], float]):
    def draw(rng, values: np.ndarray, fan_in: int, fan_out: int) -> None:
        bound = bound_of(fan_in, fan_out)
        rng.random(dtype=np.float32, out=values)
        values *= 2 * bound
        values -= bound
    return draw


def _zeros(rng, values: np.ndarray, fan_in: int, fan_out: int) -> None:
    values[...] = 0


SCHEMES = {
    "he_normal": _normal(lambda fan_in, fan_out: np.sqrt(2.0 / fan_in)),
    "he_uniform": _uniform(lambda fan_in, fan_out: np.sqrt(6.0 / fan_in)),
    "glorot_normal": _normal(lambda fan_in, fan_out: np.sqrt(2.0 / (fan_in + fan_out))),
    "glorot_uniform": _uniform(lambda fan_in, fan_out: np.sqrt(6.0 / (fan_in + fan_out))),
    "normal": _normal(lambda fan_in, fan_out: 0.01),
    "zeros": _zeros,
}
INITS = list(SCHEMES)     # the `init` argument's values


def draw(rng, scheme: str, values: np.ndarray) -> None:
    """Draw a weight tensor's values into `values` (float32, the weight's shape). A weight of
    more than four dimensions holds a conv weight per output position (locally_connected's
    (H_out, W_out, out, in, kh, kw)): its fans are those of one position's (out, in, kh, kw)."""
    shape = values.shape[-4:]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    SCHEMES[scheme](rng, values, shape[1] * receptive, shape[0] * receptive)


def weight_init(a, default: str) -> dict[str, str]:
    """`OpDef.init` of a layer with an `init` argument: its weight drawn by that scheme, else by
    the network's default; the bias starts at 0."""
    return {"weight": a.init or default}
