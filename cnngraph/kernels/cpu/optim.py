"""Optimiser updates over the flat parameter, gradient and state arrays, in one pass each."""
from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True, fastmath=True)
def sgd_update_cpu(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    """SGD as PyTorch: g += wd * p; v = momentum * v + g; p -= lr * (g + momentum * v if
    nesterov else v). With momentum 0 the velocity is unused."""
    for i in prange(params.size):
        g = grads[i] + weight_decay * params[i]
        if momentum != 0:
            v = momentum * velocity[i] + g
            velocity[i] = v
            g = g + momentum * v if nesterov else v
        params[i] -= lr * g
