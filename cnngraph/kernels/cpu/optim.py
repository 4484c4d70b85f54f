"""Optimiser updates over the flat parameter, gradient and state arrays, one pass each.

`decay` holds each element's weight-decay coefficient (0 where decay is excluded, e.g. batch
norm parameters and biases). The rules are PyTorch's, so results can be compared step by step.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, fastmath=True)
def sgd_update_cpu(params, grads, decay, velocity, lr, momentum, nesterov):
    """g += wd * p; v = momentum * v + g; p -= lr * (g + momentum * v if nesterov else v)."""
    for i in prange(params.size):
        g = grads[i] + decay[i] * params[i]
        if momentum != 0:
            v = momentum * velocity[i] + g
            velocity[i] = v
            g = g + momentum * v if nesterov else v
        params[i] -= lr * g


@njit(parallel=True, cache=True, fastmath=True)
def adam_update_cpu(params, grads, decay, m, v, lr, beta1, beta2, eps, step, decoupled):
    """Adam (L2 decay added to the gradient) or AdamW (decoupled: p *= 1 - lr * wd)."""
    correction1 = 1.0 - beta1 ** step
    correction2 = 1.0 - beta2 ** step
    for i in prange(params.size):
        p = params[i]
        g = grads[i]
        if decoupled:
            p = p * (1.0 - lr * decay[i])
        else:
            g = g + decay[i] * p
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        params[i] = p - lr * (m[i] / correction1) / (np.sqrt(v[i] / correction2) + eps)


@njit(parallel=True, cache=True, fastmath=True)
def rmsprop_update_cpu(params, grads, decay, square_avg, buffer, lr, alpha, eps, momentum):
    for i in prange(params.size):
        g = grads[i] + decay[i] * params[i]
        square_avg[i] = alpha * square_avg[i] + (1.0 - alpha) * g * g
        step = g / (np.sqrt(square_avg[i]) + eps)
        if momentum != 0:
            buffer[i] = momentum * buffer[i] + step
            step = buffer[i]
        params[i] -= lr * step
