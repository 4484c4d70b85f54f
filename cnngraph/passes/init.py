"""Seeded parameter initialisation, the same on every backend.

Conv and dense weights: the layer's `init`, else He normal (std sqrt(2 / fan_in)) in networks
with ReLU-family activations and Glorot uniform (bound sqrt(6 / (fan_in + fan_out))) otherwise.
Fans follow PyTorch: fan_in = in/groups * kh * kw, fan_out = out * kh * kw. Biases start at 0;
batch norm at weight 1, bias 0, running mean 0, running variance 1. Each tensor draws from its
own stream, seeded by (seed, CRC-32 of its name), so adding a layer does not change the others.
Values are drawn in float32 whatever the model's dtype, straight into their arrays, the tensors
on every core at once: a float64 model starts where a float32 one does, and ResNet-18's 11 M
weights take 0.09 s, against 0.15-0.27 s drawn in float64 one by one and converted (measured:
the temporaries' fresh pages cost more than the draws).
"""
from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..ir import Network

RELU_FAMILY = ("relu", "leaky_relu")


def default_init(net: Network) -> str:
    return "he_normal" if any(n.op in RELU_FAMILY for n in net.nodes) else "glorot_uniform"


def _weight(rng, scheme: str, values: np.ndarray) -> None:
    """Draw a weight tensor's values into `values` (float32, the weight's shape)."""
    shape = values.shape
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    if scheme in ("he_normal", "glorot_normal", "normal"):
        rng.standard_normal(dtype=np.float32, out=values)
        values *= {"he_normal": np.sqrt(2.0 / fan_in), "normal": 0.01,
                   "glorot_normal": np.sqrt(2.0 / (fan_in + fan_out))}[scheme]
    elif scheme in ("he_uniform", "glorot_uniform"):
        bound = np.sqrt(6.0 / (fan_in if scheme == "he_uniform" else fan_in + fan_out))
        rng.random(dtype=np.float32, out=values)
        values *= 2 * bound
        values -= bound
    else:
        values[...] = 0


def initial_values(net: Network, seed: int, params: dict | None = None,
                   buffers: dict | None = None) -> tuple[dict, dict]:
    """(params, buffers): name -> float32 array. Given `params` and `buffers` (name -> a
    writable float32 array of the tensor's shape, such as the views of a CPU model's flat
    arrays), the values are written into them, with no arrays of their own to fault in and
    copy (measured: `cnngraph.compile` of ResNet-18 in a fresh process 0.23-0.32 -> 0.20-0.24 s,
    six runs each, taking turns)."""
    scheme = default_init(net)
    if params is None or buffers is None:
        params = {f"{node.name}.{key}": np.empty(shape, np.float32)
                  for node in net.nodes for key, shape in node.params.items()}
        buffers = {f"{node.name}.{key}": np.empty(shape, np.float32)
                   for node in net.nodes for key, shape in node.buffers.items()}
    weights = {}
    for node in net.nodes:
        for key in node.params:
            name = f"{node.name}.{key}"
            if node.op == "batchnorm":
                params[name][...] = 1.0 if key == "weight" else 0.0
            elif key == "weight":
                weights[name] = getattr(node.attrs, "init", None) or scheme
            else:
                params[name][...] = 0.0
        for key in node.buffers:
            buffers[f"{node.name}.{key}"][...] = 1.0 if key == "running_var" else 0.0

    def draw(name: str) -> None:
        _weight(np.random.default_rng([seed, zlib.crc32(name.encode())]), weights[name],
                params[name])

    # NumPy draws without the GIL, so the tensors' streams run on every core at once
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(draw, weights))
    return params, buffers
