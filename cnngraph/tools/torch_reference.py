"""Run a cnngraph `Network` in PyTorch with the same parameters: the reference of the tests and
the benchmarks. Only they import this module (and PyTorch with it); cnngraph itself never does.

Each op says what it must agree with in PyTorch: `ops/<op>/reference.py` defines
`forward(node, inputs, params, buffers, training, dropout)` on torch tensors, `params` and
`buffers` holding the node's own (keyed as in `node.params`). Gradients come from autograd.
"""
from __future__ import annotations

import importlib

import numpy as np
import torch
import torch.nn.functional as F


def _pool_padding(a):
    top, bottom, left, right = a.padding
    assert top == bottom and left == right, "PyTorch pools pad symmetrically"
    return (top, left)


def _reference(op: str):
    """The op's own `reference.forward`, or None (TRANSITIONAL: until every op has one)."""
    from ..ops import REGISTRY
    try:
        return importlib.import_module(REGISTRY[op].package + ".reference").forward
    except ModuleNotFoundError:
        return None


def run(net, params: dict, buffers: dict, x, training: bool, dropout: bool = False):
    """Logits of `net` for input tensor x; params/buffers are dicts of torch tensors.
    Dropout is the identity unless `dropout` (its masks cannot match cnngraph's)."""
    env = {"input": x}
    for node in net.nodes:
        ins = [env[i] for i in node.inputs]
        a, op, name = node.attrs, node.op, node.name
        p = {k: params[f"{name}.{k}"] for k in node.params}
        own = _reference(op)
        if own is not None:
            env[name] = own(node, ins, p, {k: buffers[f"{name}.{k}"] for k in node.buffers},
                            training, dropout)
            continue
        if op == "conv":
            top, bottom, left, right = a.padding
            if top == bottom and left == right:    # PyTorch's own padding: no padded copy
                x, pad = ins[0], (top, left)
            else:
                x, pad = F.pad(ins[0], (left, right, top, bottom)), 0
            y = F.conv2d(x, p["weight"], p.get("bias"), a.stride, pad, a.dilation, a.groups)
        elif op == "dense":
            y = F.linear(ins[0], p["weight"], p.get("bias"))
        elif op == "maxpool":
            y = F.max_pool2d(ins[0], a.kernel, a.stride, _pool_padding(a), ceil_mode=a.ceil_mode)
        elif op == "avgpool":
            y = F.avg_pool2d(ins[0], a.kernel, a.stride, _pool_padding(a), a.ceil_mode,
                             a.count_include_pad)
        elif op == "global_avgpool":
            y = F.adaptive_avg_pool2d(ins[0], 1)
        elif op == "global_maxpool":
            y = F.adaptive_max_pool2d(ins[0], 1)
        elif op == "flatten":
            y = ins[0].flatten(1)
        elif op == "batchnorm":
            y = F.batch_norm(ins[0], buffers[f"{name}.running_mean"],
                             buffers[f"{name}.running_var"], p["weight"], p["bias"], training,
                             a.momentum, a.eps)
        elif op == "lrn":
            y = F.local_response_norm(ins[0], a.size, a.alpha, a.beta, a.k)
        elif op == "softmax":
            y = F.softmax(ins[0], dim=1)
        elif op == "relu":
            y = F.relu(ins[0])
        elif op == "leaky_relu":
            y = F.leaky_relu(ins[0], a.slope)
        elif op == "sigmoid":
            y = torch.sigmoid(ins[0])
        elif op == "tanh":
            y = torch.tanh(ins[0])
        elif op == "dropout":
            y = F.dropout(ins[0], a.rate, training) if dropout else ins[0]
        elif op == "identity":
            y = ins[0]
        elif op == "add":
            y = sum(ins[1:], ins[0])
        elif op == "concat":
            y = torch.cat(ins, 1)
        elif op == "mul":
            y = ins[0] * ins[1]
        else:
            raise ValueError(f"no PyTorch reference for op `{op}`")
        env[name] = y
    return env[net.output]


def reference(model, x: np.ndarray, labels: np.ndarray, smoothing: float = 0.0):
    """Loss, eval-mode logits, parameter gradients and input gradient from PyTorch, for the
    model's current parameters and buffers (read before the model's own step changes them)."""
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    params = {k: torch.tensor(np.array(v), dtype=dtype, requires_grad=True)
              for k, v in model.host_params().items()}
    buffers = {k: torch.tensor(np.array(v), dtype=dtype) for k, v in model.host_buffers().items()}
    eval_buffers = {k: v.clone() for k, v in buffers.items()}
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    logits = run(model.net, params, buffers, xt, training=True)
    loss = F.cross_entropy(logits, torch.tensor(labels), label_smoothing=smoothing)
    loss.backward()
    with torch.no_grad():
        eval_logits = run(model.net, params, eval_buffers, xt, training=False)
    return {"loss": loss.item(), "logits": eval_logits.numpy(),
            "grads": {k: v.grad.numpy() for k, v in params.items()},
            "input_grad": xt.grad.numpy(),
            "buffers": {k: v.numpy() for k, v in buffers.items()}}
