"""Run a cnngraph `Network` in PyTorch with the same parameters: the reference of the tests and
the benchmarks. Only they import this module (and PyTorch with it); cnngraph itself never does.

Each op says what it must agree with in PyTorch: `ops/<op>/reference.py`, imported only from
here, defines `forward(node, inputs, params, buffers, training, dropout)` on torch tensors,
`params` and `buffers` holding the node's own (keyed as in `node.params`). Gradients come from
autograd. An op without one is an error (no module named `cnngraph.ops.<op>.reference`).
"""
from __future__ import annotations

import importlib

import numpy as np
import torch
import torch.nn.functional as F

from ..ops import REGISTRY

LOSSES = {
    "cross_entropy": lambda out, target, smoothing: F.cross_entropy(
        out, target, label_smoothing=smoothing),
    "mse": lambda out, target, smoothing: F.mse_loss(out, target),
    "l1": lambda out, target, smoothing: F.l1_loss(out, target),
    "bce_with_logits": lambda out, target, smoothing: F.binary_cross_entropy_with_logits(
        out, target),
}


def run(net, params: dict, buffers: dict, x, training: bool, dropout: bool = False):
    """Logits of `net` for input tensor x; params/buffers are dicts of torch tensors.
    Dropout is the identity unless `dropout` (its masks cannot match cnngraph's)."""
    return run_outputs(net, params, buffers, x, training, dropout)[net.outputs[0].name]


def run_outputs(net, params: dict, buffers: dict, x, training: bool,
                dropout: bool = False) -> dict:
    """Every output of `net` (by name) for input tensor x, as `run`."""
    env = {"input": x}
    for node in net.nodes:
        forward = importlib.import_module(REGISTRY[node.op].package + ".reference").forward
        env[node.name] = forward(node, [env[i] for i in node.inputs],
                                 {k: params[f"{node.name}.{k}"] for k in node.params},
                                 {k: buffers[f"{node.name}.{k}"] for k in node.buffers},
                                 training, dropout)
    return {output.name: env[output.node] for output in net.outputs}


def reference(model, x: np.ndarray, labels: np.ndarray, smoothing: float = 0.0):
    """Loss (every output's, weighted, against `model.targets(labels)`), eval-mode logits of
    the main output, parameter gradients and input gradient from PyTorch, for the model's
    current parameters and buffers (read before the model's own step changes them)."""
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    params = {k: torch.tensor(np.array(v), dtype=dtype, requires_grad=True)
              for k, v in model.host_params().items()}
    buffers = {k: torch.tensor(np.array(v), dtype=dtype) for k, v in model.host_buffers().items()}
    eval_buffers = {k: v.clone() for k, v in buffers.items()}
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    outputs = run_outputs(model.net, params, buffers, xt, training=True)
    loss = sum(output.weight * LOSSES[output.loss](
        outputs[output.name].reshape(len(x), -1), torch.tensor(target), smoothing)
        for output, target in zip(model.net.outputs, model.targets(labels, len(x)),
                                  strict=True))
    loss.backward()
    with torch.no_grad():
        eval_logits = run(model.net, params, eval_buffers, xt, training=False)
    grads = {k: v.grad for k, v in params.items()}
    assert xt.grad is not None and all(g is not None for g in grads.values())
    return {"loss": loss.item(), "logits": eval_logits.numpy(),
            "grads": {k: g.numpy() for k, g in grads.items() if g is not None},
            "input_grad": xt.grad.numpy(),
            "buffers": {k: v.numpy() for k, v in buffers.items()}}
