"""Optimiser updates on CUDA over the flat parameter, gradient and state arrays: one thread per
element, the same rules as the CPU kernels (PyTorch's); scalars are cast to the arrays' dtype
and the bias corrections of Adam computed on the host, so float32 updates stay float32."""
from __future__ import annotations

import math

from numba import cuda

from .launch import blocks, run


@cuda.jit(cache=True)
def sgd_update(params, grads, decay, velocity, lr, momentum, nesterov):
    for i in range(cuda.grid(1), params.size, cuda.gridsize(1)):
        g = grads[i] + decay[i] * params[i]
        if momentum != 0:
            v = momentum * velocity[i] + g
            velocity[i] = v
            g = g + momentum * v if nesterov else v
        params[i] -= lr * g


@cuda.jit(cache=True)
def adam_update(params, grads, decay, m, v, lr, beta1, beta2, eps, correction1, correction2,
                decoupled, one):
    for i in range(cuda.grid(1), params.size, cuda.gridsize(1)):
        p = params[i]
        g = grads[i]
        if decoupled:
            p = p * (one - lr * decay[i])
        else:
            g = g + decay[i] * p
        m[i] = beta1 * m[i] + (one - beta1) * g
        v[i] = beta2 * v[i] + (one - beta2) * g * g
        params[i] = p - lr * (m[i] / correction1) / (math.sqrt(v[i] / correction2) + eps)


@cuda.jit(cache=True)
def rmsprop_update(params, grads, decay, square_avg, buffer, lr, alpha, eps, momentum, one):
    for i in range(cuda.grid(1), params.size, cuda.gridsize(1)):
        g = grads[i] + decay[i] * params[i]
        square_avg[i] = alpha * square_avg[i] + (one - alpha) * g * g
        step = g / (math.sqrt(square_avg[i]) + eps)
        if momentum != 0:
            buffer[i] = momentum * buffer[i] + step
            step = buffer[i]
        params[i] -= lr * step


def sgd_update_cuda(params, grads, decay, velocity, lr, momentum, nesterov):
    f = params.dtype.type
    run(sgd_update, blocks(params.size), params, grads, decay, velocity, f(lr), f(momentum),
        nesterov)


def adam_update_cuda(params, grads, decay, m, v, lr, beta1, beta2, eps, step, decoupled):
    f = params.dtype.type
    run(adam_update, blocks(params.size),
        params, grads, decay, m, v, f(lr), f(beta1), f(beta2), f(eps), f(1.0 - beta1 ** step),
        f(1.0 - beta2 ** step), decoupled, f(1))


def rmsprop_update_cuda(params, grads, decay, square_avg, buffer, lr, alpha, eps, momentum):
    f = params.dtype.type
    run(rmsprop_update, blocks(params.size), params, grads, decay, square_avg, buffer, f(lr),
        f(alpha), f(eps), f(momentum), f(1))
