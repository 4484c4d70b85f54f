"""batchnorm on CUDA: one block per channel (grid-stride over channels).

Forward (training): the block reduces the channel's sum, then its squared deviations (two
tree reductions, so the variance is not a difference of large numbers), updates the running
statistics, and normalises. Backward: two reductions (sum dy, sum dy * xhat), then dx. With
frozen statistics (not `batch_statistics`: the forward pass normalised with the running ones,
as in evaluation) dx = weight * invstd * dy, and the reductions serve the weight and bias
gradients alone. Vectors (N, F) are handled as (N, F, 1), as on the CPU.
"""
from __future__ import annotations

import math

from numba import cuda

from ...kernels.cuda.launch import blocks, instantiate, run
from ...kernels.cuda.reduce import BLOCK_SUM
from ..pointwise.cuda import ACTIVATE

_TEMPLATE = BLOCK_SUM + '''

@cuda.jit(cache=True)
def batchnorm_fwd(x, y, weight, bias, running_mean, running_var, mean, invstd, eps, momentum,
                  training, act, act_arg):
    shared = cuda.shared.array(THREADS, F)
    n, c, size = x.shape
    m = n * size
    t = cuda.threadIdx.x
    for ch in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        if training:
            total = F(0)
            for e in range(t, m, THREADS):
                total += x[e // size, ch, e % size]
            mu = block_sum(shared, total) / F(m)
            squares = F(0)
            for e in range(t, m, THREADS):
                d = x[e // size, ch, e % size] - mu
                squares += d * d
            var = block_sum(shared, squares) / F(m)
            if t == 0:
                unbiased = var * F(m) / F(m - 1) if m > 1 else var
                running_mean[ch] = (F(1) - momentum) * running_mean[ch] + momentum * mu
                running_var[ch] = (F(1) - momentum) * running_var[ch] + momentum * unbiased
        else:
            mu = running_mean[ch]
            var = running_var[ch]
        inv = F(1) / math.sqrt(var + eps)
        if t == 0:
            mean[ch] = mu
            invstd[ch] = inv
        scale = weight[ch] * inv
        shift = bias[ch] - mu * scale
        for e in range(t, m, THREADS):
            y[e // size, ch, e % size] = activate(x[e // size, ch, e % size] * scale + shift,
                                                  act, act_arg)


@cuda.jit(cache=True)
def batchnorm_bwd(x, dy, dx, weight, mean, invstd, dweight, dbias, need_dx, need_dw, need_db,
                  batch_statistics):
    shared = cuda.shared.array(THREADS, F)
    n, c, size = x.shape
    m = n * size
    t = cuda.threadIdx.x
    for ch in range(cuda.blockIdx.x, c, cuda.gridDim.x):
        mu = mean[ch]
        inv = invstd[ch]
        sum_dy = F(0)
        sum_dy_xhat = F(0)
        if batch_statistics or need_dw or need_db:   # (the whole block takes the same branch)
            total = F(0)
            total_xhat = F(0)
            for e in range(t, m, THREADS):
                g = dy[e // size, ch, e % size]
                total += g
                total_xhat += g * (x[e // size, ch, e % size] - mu) * inv
            sum_dy = block_sum(shared, total)
            sum_dy_xhat = block_sum(shared, total_xhat)
        if t == 0:
            if need_dw:
                dweight[ch] = sum_dy_xhat
            if need_db:
                dbias[ch] = sum_dy
        if need_dx and batch_statistics:
            k = weight[ch] * inv / F(m)
            for e in range(t, m, THREADS):
                xhat = (x[e // size, ch, e % size] - mu) * inv
                dx[e // size, ch, e % size] = k * (F(m) * dy[e // size, ch, e % size] - sum_dy
                                                   - xhat * sum_dy_xhat)
        elif need_dx:
            scale = weight[ch] * inv
            for e in range(t, m, THREADS):
                dx[e // size, ch, e % size] = scale * dy[e // size, ch, e % size]
'''

KERNELS = instantiate(ACTIVATE + _TEMPLATE, "batchnorm")


def batchnorm_fwd_cuda(x, y, weight, bias, running_mean, running_var, mean, invstd, eps,
                       momentum, training, act, act_arg):
    f = x.dtype.type
    run(KERNELS[x.dtype].batchnorm_fwd, blocks(x.shape[1], 1),
        x, y, weight, bias, running_mean, running_var, mean, invstd, f(eps), f(momentum),
        training, act, f(act_arg))


def batchnorm_bwd_cuda(x, dy, dx, weight, mean, invstd, weight_grad, bias_grad, need_dx, need_dw,
                       need_db, batch_statistics):
    run(KERNELS[x.dtype].batchnorm_bwd, blocks(x.shape[1], 1),
        x, dy, dx, weight, mean, invstd, weight_grad, bias_grad, need_dx, need_dw, need_db,
        batch_statistics)


@cuda.jit(cache=True)
def fold(w, b, gamma, beta, mean, var, eps, has_bias, zero, out_w, out_b):
    """Batch norm folded into the conv before it (see cnngraph/passes/fold.py), on the device: one
    thread per weight element; the first of each output channel also writes the bias."""
    per = w.shape[1]
    for e in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        o = e // per
        scale = gamma[o] / math.sqrt(var[o] + eps)
        out_w[o, e % per] = w[o, e % per] * scale
        if e % per == 0:
            out_b[o] = ((b[o] if has_bias else zero) - mean[o]) * scale + beta[o]


def fold_cuda(fold_, params: dict, buffers: dict, out_weight, out_bias) -> None:
    w = params[f"{fold_.conv}.weight"]
    bias = params.get(f"{fold_.conv}.bias")
    f = w.dtype.type
    run(fold, blocks(w.size),
        w.reshape(w.shape[0], w.size // w.shape[0]), out_bias if bias is None else bias,
        params[f"{fold_.norm}.weight"], params[f"{fold_.norm}.bias"],
        buffers[f"{fold_.norm}.running_mean"], buffers[f"{fold_.norm}.running_var"],
        f(fold_.eps), bias is not None, f(0), out_weight.reshape(w.shape[0], w.size // w.shape[0]),
        out_bias)

