"""Check a compiled network's generated backward pass against float64 finite differences.

For every layer with parameters, and for the network input, a few random coordinates are
perturbed by +-eps and the central difference of the loss is compared with the analytic
gradient. Batch-norm running statistics are restored and the dropout masks held fixed between
evaluations, so every evaluation computes the same function. Layers without parameters are
checked through the gradients that flow through them to the layers and input before them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import INPUT, Network


@dataclass(frozen=True)
class LayerCheck:
    layer: str
    op: str
    probes: int
    worst: float          # worst relative_error over the probes


def relative_error(analytic: float, numeric: float, floor: float = 1e-4) -> float:
    """|a - n| / max(|a|, |n|, floor). The floor keeps gradients that are truly zero (a bias
    before batch norm) from turning central-difference round-off (~1e-10) into large ratios;
    below it the error is judged in absolute terms at that scale."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)


def gradient_check(net: Network, samples: int = 3, batch: int = 2, seed: int = 0,
                   eps: float = 1e-6) -> list[LayerCheck]:
    from .api import compile as compile_net
    model = compile_net(net, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *net.input_shape))
    labels = rng.integers(0, net.output_shape[0], batch)
    buffers = np.array(model.flat_buffers)
    step = model.steps

    def loss() -> float:
        model.steps = step                       # the same dropout masks every time
        value = model.loss_and_grad(x, labels, input_grad=True)
        model.flat_buffers[...] = buffers
        return value

    loss()
    grads = {k: np.array(v) for k, v in model.grads.items()}
    input_grad = np.array(model.input_grad)
    targets = [(INPUT, "input", {INPUT: x}, {INPUT: input_grad})]
    for node in net.nodes:
        if node.params:
            names = [f"{node.name}.{k}" for k in node.params]
            targets.append((node.name, node.op, {n: model.params[n] for n in names},
                            {n: grads[n] for n in names}))
    results = []
    for layer, op, arrays, analytic in targets:
        worst, probes = 0.0, 0
        for name, array in arrays.items():
            for _ in range(samples):
                index = tuple(int(rng.integers(0, s)) for s in array.shape)
                old = array[index]
                array[index] = old + eps
                up = loss()
                array[index] = old - eps
                down = loss()
                array[index] = old
                worst = max(worst, relative_error(analytic[name][index], (up - down) / (2 * eps)))
                probes += 1
        results.append(LayerCheck(layer, op, probes, worst))
    return results
