"""Which elements dropout keeps, the same on every target: each element's keep decision hashes
(step seed, layer, element index) with SplitMix64, so masks are reproducible for a seed and
independent of how the work is split across threads. The top 53 bits of the hash are kept when
they reach `threshold(rate)` = ceil(rate * 2^53): exactly "uniform >= rate", in integers.

`bits53` is plain Python on NumPy integers: each backend compiles it for its own kernels."""
from __future__ import annotations

import math

import numpy as np


def bits53(seed, salt, i):
    """The top 53 bits of the hash of element i of layer `salt` in the step with `seed`."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt) * np.uint64(
        0xBF58476D1CE4E5B9) + np.uint64(i)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(11)


def threshold(rate: float) -> int:
    """Keep an element when the top 53 bits of its hash reach this."""
    return math.ceil(rate * 2.0 ** 53)
