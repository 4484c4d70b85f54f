"""batchnorm on the CPU, in parallel over chunks of channels (kernels/cpu/chunks.py); statistics
accumulate in float64. The kernels may reassociate their sums, so that they vectorise (NaN and
infinity keep their meaning; bench/results/kernels.md has the gain).

Training: y = (x - mean) * invstd * weight + bias with batch statistics; the running statistics
move by `momentum`, the variance unbiased (as PyTorch). Evaluation uses the running statistics.
Backward (training): dx = weight * invstd / M * (M dy - sum dy - xhat * sum(dy * xhat)).
Vectors (N, F) are handled as (N, F, 1).
"""
from __future__ import annotations

import numpy as np

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from ..pointwise.cpu import activate_all

SUMS_IN_ANY_ORDER = {"reassoc", "contract", "nsz", "arcp"}


@chunk_kernel(fastmath=SUMS_IN_ANY_ORDER)
def _batchnorm_fwd(t, chunks, x, y, weight, bias, running_mean, running_var, mean, invstd,
                   eps, momentum, training, act, act_arg):
    """Chunk t of the channels; a fused activation (code `act`) is applied to each row of the
    output while it is in cache."""
    n, c, size = x.shape
    m = n * size
    first, last = span(t, chunks, c)
    for ch in range(first, last):
        if training:
            total = 0.0
            for i in range(n):
                for j in range(size):
                    total += x[i, ch, j]
            mu = total / m
            squares = 0.0
            for i in range(n):
                for j in range(size):
                    squares += (x[i, ch, j] - mu) ** 2
            var = squares / m
            running_mean[ch] = (1 - momentum) * running_mean[ch] + momentum * mu
            unbiased = var * m / (m - 1) if m > 1 else var
            running_var[ch] = (1 - momentum) * running_var[ch] + momentum * unbiased
        else:
            mu = np.float64(running_mean[ch])
            var = np.float64(running_var[ch])
        inv = 1.0 / np.sqrt(var + eps)
        mean[ch] = mu
        invstd[ch] = inv
        scale = weight[ch] * inv
        shift = bias[ch] - mu * scale
        for i in range(n):
            for j in range(size):
                y[i, ch, j] = x[i, ch, j] * scale + shift
            if act != 0:
                activate_all(y[i, ch], act, act_arg)


@chunk_kernel(fastmath=SUMS_IN_ANY_ORDER)
def _batchnorm_bwd(t, chunks, x, dy, dx, weight, mean, invstd, dweight, dbias, need_dx):
    n, c, size = x.shape
    m = n * size
    first, last = span(t, chunks, c)
    for ch in range(first, last):
        mu, inv = np.float64(mean[ch]), np.float64(invstd[ch])
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for i in range(n):
            for j in range(size):
                g = dy[i, ch, j]
                sum_dy += g
                sum_dy_xhat += g * (x[i, ch, j] - mu) * inv
        dweight[ch] = sum_dy_xhat
        dbias[ch] = sum_dy
        if need_dx:
            k = weight[ch] * inv / m
            for i in range(n):
                for j in range(size):
                    xhat = (x[i, ch, j] - mu) * inv
                    dx[i, ch, j] = k * (m * dy[i, ch, j] - sum_dy - xhat * sum_dy_xhat)


def batchnorm_fwd_cpu(x, y, weight, bias, running_mean, running_var, mean, invstd, eps,
                      momentum, training, act, act_arg) -> None:
    run_chunks(_batchnorm_fwd, split(x.size), x, y, weight, bias, running_mean, running_var,
               mean, invstd, eps, momentum, training, act, act_arg)


def batchnorm_bwd_cpu(x, dy, dx, weight, mean, invstd, weight_grad, bias_grad, need_dx) -> None:
    run_chunks(_batchnorm_bwd, split(x.size), x, dy, dx, weight, mean, invstd, weight_grad,
               bias_grad, need_dx)


@chunk_kernel
def _fold(t, chunks, w, b, gamma, beta, mean, var, eps, has_bias, out_w, out_b):
    """Batch norm folded into the conv before it (passes/fold.py), a chunk of its output
    channels: in float64, each value rounded once."""
    lo, hi = span(t, chunks, w.shape[0])
    for o in range(lo, hi):
        scale = np.float64(gamma[o]) / np.sqrt(np.float64(var[o]) + eps)
        weights, folded = w[o], out_w[o]
        for i in range(weights.size):
            folded[i] = weights[i] * scale
        shift = np.float64(b[o]) if has_bias else 0.0
        out_b[o] = (shift - mean[o]) * scale + beta[o]


def fold_cpu(fold, params: dict, buffers: dict, out_weight, out_bias) -> None:
    """The folded conv's weight and bias from the current values, into out_weight and out_bias.
    Inference refolds before every call, so this must be cheap (a compiled kernel, not NumPy in
    float64: bench/results/kernels.md)."""
    w = params[f"{fold.conv}.weight"]
    bias = params.get(f"{fold.conv}.bias")
    rows = (w.shape[0], w.size // w.shape[0])
    run_chunks(_fold, split(w.size), w.reshape(rows), out_bias if bias is None else bias,
               params[f"{fold.norm}.weight"], params[f"{fold.norm}.bias"],
               buffers[f"{fold.norm}.running_mean"], buffers[f"{fold.norm}.running_var"],
               fold.eps, bias is not None, out_weight.reshape(rows), out_bias)

