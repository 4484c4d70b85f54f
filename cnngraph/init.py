"""Seeded parameter initialisation, the same on every backend.

Conv and dense weights: the layer's `init`, else He normal (std sqrt(2 / fan_in)) in networks
with ReLU-family activations and Glorot uniform (bound sqrt(6 / (fan_in + fan_out))) otherwise.
Fans follow PyTorch: fan_in = in/groups * kh * kw, fan_out = out * kh * kw. Biases start at 0;
batch norm at weight 1, bias 0, running mean 0, running variance 1. Each tensor draws from its
own stream, seeded by (seed, CRC-32 of its name), so adding a layer does not change the others.
"""
from __future__ import annotations

import zlib

import numpy as np

from .ir import Network

RELU_FAMILY = ("relu", "leaky_relu")


def default_init(net: Network) -> str:
    return "he_normal" if any(n.op in RELU_FAMILY for n in net.nodes) else "glorot_uniform"


def _weight(rng, shape, scheme: str) -> np.ndarray:
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    if scheme == "he_normal":
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    if scheme == "he_uniform":
        bound = np.sqrt(6.0 / fan_in)
        return rng.uniform(-bound, bound, shape)
    if scheme == "glorot_normal":
        return rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "glorot_uniform":
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape)
    if scheme == "normal":
        return rng.standard_normal(shape) * 0.01
    return np.zeros(shape)


def initial_values(net: Network, seed: int) -> tuple[dict, dict]:
    """(params, buffers): name -> float64 array."""
    scheme = default_init(net)
    params, buffers = {}, {}
    for node in net.nodes:
        for key, shape in node.params.items():
            name = f"{node.name}.{key}"
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            if node.op == "batchnorm":
                params[name] = np.ones(shape) if key == "weight" else np.zeros(shape)
            elif key == "weight":
                params[name] = _weight(rng, shape, getattr(node.attrs, "init", None) or scheme)
            else:
                params[name] = np.zeros(shape)
        for key, shape in node.buffers.items():
            buffers[f"{node.name}.{key}"] = np.ones(shape) if key == "running_var" \
                else np.zeros(shape)
    return params, buffers
