"""Seeded parameter initialisation, the same on every backend.

Each op says how its tensors start (`OpDef.init`): conv and dense weights by the layer's `init`
(ops/inits.py), else He normal in networks with a ReLU-family activation (`OpDef.rectifier`)
and Glorot uniform otherwise; batch norm at weight 1, bias 0, running mean 0, running variance
1; everything else at 0. Each drawn tensor has its own stream, seeded by (seed, CRC-32 of its
name), so adding a layer does not change the others.
Values are drawn in float32 whatever the model's dtype, straight into their arrays, the tensors
on every core at once: a float64 model starts where a float32 one does, and the temporaries'
fresh pages of drawing in float64 cost more than the draws (bench/results/runtime.md).
"""
from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from ..ir import Network
from ..ops import REGISTRY
from ..ops.inits import draw

Arrays = dict[str, NDArray[np.float32]]   # tensor name -> its values


def default_init(net: Network) -> str:
    return ("he_normal" if any(REGISTRY[n.op].rectifier for n in net.nodes)
            else "glorot_uniform")


def initial_values(net: Network, seed: int, params: Arrays | None = None,
                   buffers: Arrays | None = None) -> tuple[Arrays, Arrays]:
    """(params, buffers): name -> float32 array. Given `params` and `buffers` (name -> a
    writable float32 array of the tensor's shape, such as the views of a CPU model's flat
    arrays), the values are written into them, with no arrays of their own to fault in and
    copy."""
    scheme = default_init(net)
    if params is None or buffers is None:
        params = {f"{node.name}.{key}": np.empty(shape, np.float32)
                  for node in net.nodes for key, shape in node.params.items()}
        buffers = {f"{node.name}.{key}": np.empty(shape, np.float32)
                   for node in net.nodes for key, shape in node.buffers.items()}
    drawn: dict[str, tuple[str, NDArray[np.float32]]] = {}      # name -> (scheme, array)
    for node in net.nodes:
        starts = REGISTRY[node.op].init(node.attrs, scheme)
        for arrays, keys in ((params, node.params), (buffers, node.buffers)):
            for key in keys:
                start, name = starts.get(key, 0.0), f"{node.name}.{key}"
                if isinstance(start, str):
                    drawn[name] = (start, arrays[name])
                else:
                    arrays[name][...] = start

    def draw_one(name: str) -> None:
        draw(np.random.default_rng([seed, zlib.crc32(name.encode())]), *drawn[name])

    # NumPy draws without the GIL, so the tensors' streams run on every core at once
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(draw_one, drawn))
    return params, buffers
