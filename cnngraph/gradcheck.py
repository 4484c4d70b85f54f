"""Check a compiled network's generated backward pass against float64 finite differences.

For every layer with parameters, and for the network input, a few random coordinates are
perturbed by +-eps and the central difference of the loss is compared with the analytic
gradient. Batch-norm running statistics are restored and the dropout masks held fixed between
evaluations, so every evaluation computes the same function. Layers without parameters are
checked through the gradients that flow through them to the layers and input before them.

ReLU and max have kinks, and a probe can sit exactly on one: a conv whose window sees only zeros
(a dead ReLU before it) outputs exactly its bias, 0 at initialisation, so perturbing that bias
crosses ReLU's kink. The central difference there averages the two one-sided slopes and matches
neither; the generated gradient takes one side, as PyTorch does. So a probe whose central
difference disagrees is measured again at half the step: one-sided slopes extrapolated from both
steps (Richardson, error O(eps^2)) that disagree with each other mark a kink, and there the
analytic gradient is compared with the nearer one.
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
    kinks: int = 0        # probes that sat on a kink (judged by the nearer one-sided slope)


def relative_error(analytic: float, numeric: float, floor: float = 1e-4) -> float:
    """|a - n| / max(|a|, |n|, floor). The floor keeps gradients that are truly zero (a bias
    before batch norm) from turning central-difference round-off (~1e-10) into large ratios;
    below it the error is judged in absolute terms at that scale."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)


SUSPECT = 1e-7       # central-difference errors above this are measured again (float64: ~1e-9)
KINK = 1e-4          # one-sided slopes further apart than this (relative) mark a kink


def probe_error(loss, array, index, eps: float, base: float, analytic: float) -> tuple[float, bool]:
    """The relative error of the analytic gradient at one coordinate of `array`, and whether
    the loss has a kink there (see the module's doc)."""
    def at(step: float) -> float:
        old = array[index]
        array[index] = old + step
        value = loss()
        array[index] = old
        return value

    up, down = at(eps), at(-eps)
    error = relative_error(analytic, (up - down) / (2 * eps))
    if error <= SUSPECT:
        return error, False
    half_up, half_down = at(eps / 2), at(-eps / 2)
    forward = 2 * (half_up - base) / (eps / 2) - (up - base) / eps
    backward = 2 * (base - half_down) / (eps / 2) - (base - down) / eps
    if relative_error(forward, backward) <= KINK:
        return error, False
    return min(relative_error(analytic, forward), relative_error(analytic, backward)), True


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

    base = loss()
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
        worst, probes, kinks = 0.0, 0, 0
        for name, array in arrays.items():
            for _ in range(samples):
                index = tuple(int(rng.integers(0, s)) for s in array.shape)
                error, kink = probe_error(loss, array, index, eps, base, analytic[name][index])
                worst, probes, kinks = max(worst, error), probes + 1, kinks + kink
        results.append(LayerCheck(layer, op, probes, worst, kinks))
    return results
