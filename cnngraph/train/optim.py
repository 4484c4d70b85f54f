"""Optimisers over a compiled model's flat parameter and gradient arrays.

Each keeps its state as flat arrays (saved in checkpoints) and updates every parameter in one
kernel. Weight decay can exclude batch-norm parameters and biases (`decay_bn_bias=False`;
each op names them in `OpDef.decay_exempt`), the common recipe for ResNets trained with SGD and
for AdamW; the coefficients go to the kernel as runs over the flat parameters (`decay_runs`),
not as an array of their size.
"""
from __future__ import annotations

import importlib

import numpy as np

from ..ops import REGISTRY


def decay_runs(model, weight_decay: float,
               decay_bn_bias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The weight-decay coefficients over the flat parameters as runs (on the host): where each
    run ends (exclusive) and its coefficient; neighbouring tensors with the same coefficient
    share a run, so with one coefficient for all there is one run."""
    ends, values, offset = [], [], 0
    for name, value in model.params.items():
        node, key = name.rsplit(".", 1)
        excluded = not decay_bn_bias and key in REGISTRY[model.net.node(node).op].decay_exempt
        coefficient = 0.0 if excluded else weight_decay
        offset += value.size
        if values and values[-1] == coefficient:
            ends[-1] = offset
        else:
            ends.append(offset)
            values.append(coefficient)
    return np.array(ends, np.int64), np.array(values, model.flat_params.dtype)


def clip_grad_norm(model, max_norm: float) -> float:
    """Scale the gradients so their global L2 norm is at most max_norm; returns the norm."""
    norm = float(np.sqrt(model.backend.squared_norm(model.flat_grads)))
    if max_norm and norm > max_norm:
        model.backend.scale(model.flat_grads, max_norm / (norm + 1e-6))
    return norm


class Optimizer:
    slots: tuple[str, ...] = ()

    def __init__(self, model, lr: float, weight_decay: float = 0.0, decay_bn_bias: bool = True):
        self.model, self.lr = model, lr
        backend = model.backend
        self.kernels = importlib.import_module(f"cnngraph.kernels.{backend.name}.optim")
        self.decay_runs = []
        for host in decay_runs(model, weight_decay, decay_bn_bias):
            self.decay_runs.append(backend.empty(host.size, host.dtype))
            backend.from_host(host, self.decay_runs[-1])
        self.state = {slot: self._array() for slot in self.slots}
        for array in self.state.values():
            backend.zeros(array)
        self.steps = 0

    def _array(self):
        return self.model.backend.empty(self.model.flat_params.size, self.model.dtype)

    def _kernel(self, name: str):
        return getattr(self.kernels, f"{name}_{self.model.backend.name}")

    def step(self) -> None:
        self.steps += 1
        self._update()

    def state_dict(self) -> dict:
        to_host = self.model.backend.to_host
        return {**{k: np.array(to_host(v)) for k, v in self.state.items()},
                "steps": np.array(self.steps)}

    def load_state_dict(self, state: dict) -> None:
        for slot in self.slots:
            self.model.backend.from_host(state[slot], self.state[slot])
        self.steps = int(state["steps"])


class SGD(Optimizer):
    """SGD with momentum, Nesterov momentum and L2 weight decay (PyTorch's rule)."""

    slots = ("velocity",)

    def __init__(self, model, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, decay_bn_bias: bool = True):
        super().__init__(model, lr, weight_decay, decay_bn_bias)
        self.momentum, self.nesterov = momentum, nesterov

    def _update(self) -> None:
        m = self.model
        self._kernel("sgd_update")(m.flat_params, m.flat_grads, self.state["velocity"],
                                   *self.decay_runs, self.lr, self.momentum, self.nesterov)


class Adam(Optimizer):
    slots = ("m", "v")
    decoupled = False

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decay_bn_bias: bool = True):
        super().__init__(model, lr, weight_decay, decay_bn_bias)
        self.betas, self.eps = tuple(betas), eps

    def _update(self) -> None:
        m = self.model
        beta1, beta2 = self.betas
        self._kernel("adam_update")(m.flat_params, m.flat_grads, self.state["m"],
                                    self.state["v"], *self.decay_runs, self.lr, beta1, beta2,
                                    self.eps, 1.0 - beta1 ** self.steps,
                                    1.0 - beta2 ** self.steps, self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""

    decoupled = True

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, decay_bn_bias: bool = True):
        super().__init__(model, lr, betas, eps, weight_decay, decay_bn_bias)


class RMSProp(Optimizer):
    slots = ("square_avg", "buffer")

    def __init__(self, model, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0, decay_bn_bias: bool = True):
        super().__init__(model, lr, weight_decay, decay_bn_bias)
        self.alpha, self.eps, self.momentum = alpha, eps, momentum

    def _update(self) -> None:
        m = self.model
        self._kernel("rmsprop_update")(m.flat_params, m.flat_grads, self.state["square_avg"],
                                       self.state["buffer"], *self.decay_runs, self.lr,
                                       self.alpha, self.eps, self.momentum)
