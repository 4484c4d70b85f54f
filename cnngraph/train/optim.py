"""Optimisers over a compiled model's flat parameter and gradient arrays."""
from __future__ import annotations

import numpy as np

from ..kernels.cpu.optim import sgd_update_cpu


class SGD:
    """Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, with
    PyTorch's update rule (the velocity starts at zero)."""

    def __init__(self, model, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        self.model, self.lr = model, lr
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.velocity = np.zeros_like(model.flat_params)

    def step(self) -> None:
        m = self.model
        sgd_update_cpu(m.flat_params, m.flat_grads, self.velocity, self.lr, self.momentum,
                       self.weight_decay, self.nesterov)
