"""Optimisers over a compiled model's flat parameter and gradient arrays.

Each keeps its state as flat arrays (saved in checkpoints) and updates every parameter in one
kernel. Weight decay can exclude batch-norm parameters and biases (`decay_bn_bias=False`;
each op names them in `OpDef.decay_exempt`), the common recipe for ResNets trained with SGD and
for AdamW; `param_groups` set a learning-rate multiplier and weight decay per tensor, and
frozen tensors (`Node.frozen`) are not updated (train/finetune.py). The settings go to the
kernel as runs over the flat parameters (`finetune.update_runs`), not as arrays of their size.
"""
from __future__ import annotations

import importlib

import numpy as np

from .finetune import update_runs


def clip_grad_norm(model, max_norm: float) -> float:
    """Scale the gradients so their global L2 norm is at most max_norm; returns the norm."""
    norm = float(np.sqrt(model.backend.squared_norm(model.flat_grads)))
    if max_norm and norm > max_norm:
        model.backend.scale(model.flat_grads, max_norm / (norm + 1e-6))
    return norm


class Optimizer:
    slots: tuple[str, ...] = ()

    def __init__(self, model, lr: float, weight_decay: float = 0.0, decay_bn_bias: bool = True,
                 param_groups=()):
        self.model, self.lr = model, lr
        backend = model.backend
        self.kernels = importlib.import_module(f"cnngraph.kernels.{backend.name}.optim")
        self.runs = []
        for host in update_runs(model, weight_decay, decay_bn_bias, param_groups):
            self.runs.append(backend.empty(host.size, host.dtype))
            backend.from_host(host, self.runs[-1])
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
                 nesterov: bool = False, decay_bn_bias: bool = True, param_groups=()):
        super().__init__(model, lr, weight_decay, decay_bn_bias, param_groups)
        self.momentum, self.nesterov = momentum, nesterov

    def _update(self) -> None:
        m = self.model
        self._kernel("sgd_update")(m.flat_params, m.flat_grads, self.state["velocity"],
                                   *self.runs, self.lr, self.momentum, self.nesterov)


class Adam(Optimizer):
    slots = ("m", "v")
    decoupled = False

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decay_bn_bias: bool = True, param_groups=()):
        super().__init__(model, lr, weight_decay, decay_bn_bias, param_groups)
        self.betas, self.eps = tuple(betas), eps

    def _update(self) -> None:
        m = self.model
        beta1, beta2 = self.betas
        self._kernel("adam_update")(m.flat_params, m.flat_grads, self.state["m"],
                                    self.state["v"], *self.runs, self.lr, beta1, beta2,
                                    self.eps, 1.0 - beta1 ** self.steps,
                                    1.0 - beta2 ** self.steps, self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""

    decoupled = True

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, decay_bn_bias: bool = True, param_groups=()):
        super().__init__(model, lr, betas, eps, weight_decay, decay_bn_bias, param_groups)


class RMSProp(Optimizer):
    slots = ("square_avg", "buffer")

    def __init__(self, model, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0, decay_bn_bias: bool = True,
                 param_groups=()):
        super().__init__(model, lr, weight_decay, decay_bn_bias, param_groups)
        self.alpha, self.eps, self.momentum = alpha, eps, momentum

    def _update(self) -> None:
        m = self.model
        self._kernel("rmsprop_update")(m.flat_params, m.flat_grads, self.state["square_avg"],
                                       self.state["buffer"], *self.runs, self.lr,
                                       self.alpha, self.eps, self.momentum)


def optimizer_for(model, config) -> Optimizer:
    """The optimiser a run's settings (a TrainConfig) name, over `model`."""
    decay = dict(weight_decay=config.weight_decay, decay_bn_bias=config.decay_bn_bias,
                 param_groups=config.param_groups)
    if config.optimizer == "sgd":
        return SGD(model, config.lr, config.momentum, nesterov=config.nesterov, **decay)
    if config.optimizer in ("adam", "adamw"):
        kind = Adam if config.optimizer == "adam" else AdamW
        return kind(model, config.lr, config.betas, config.eps, **decay)
    return RMSProp(model, config.lr, config.alpha, config.eps, config.momentum, **decay)
