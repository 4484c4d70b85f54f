"""Kernels the step code needs beside the ops: gradient sums, copies, the losses.

Kernels write element loops rather than array expressions on views (`y[n] += b`): inside
Numba those allocate a temporary per evaluation, which a step must not do.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _sum_flat(t, chunks, out_all, parts):
    lo, hi = span(t, chunks, out_all.size)
    sum_range(out_all, parts, lo, hi)


@njit(cache=True, inline="always")
def sum_range(out_all, parts, lo, hi):
    """out_all[lo:hi] = the sum of the parts' [lo:hi]: the first two in one pass, then one pass
    per further part. (It slices the range and loops from 0, so that the loops vectorise.)"""
    out = out_all[lo:hi]
    first = parts[0][lo:hi]
    second = parts[1][lo:hi]
    for i in range(out.size):
        out[i] = first[i] + second[i]
    for k in range(2, len(parts)):
        part = parts[k][lo:hi]
        for i in range(out.size):
            out[i] += part[i]


def sum_cpu(out, parts) -> None:
    """out = the sum of two or more arrays (an add layer, or the partial gradients of a tensor
    that feeds several layers): the first two in one pass, then one pass per further part. The
    kernel sees flat views, so every shape shares one compiled signature."""
    run_chunks(_sum_flat, split(out.size), out.reshape(-1),
               tuple(part.reshape(-1) for part in parts))


@chunk_kernel
def _copy_flat(t, chunks, src_all, dst_all):
    lo, hi = span(t, chunks, src_all.size)
    src = src_all[lo:hi]
    dst = dst_all[lo:hi]
    for i in range(src.size):
        dst[i] = src[i]


def copy_cpu(src, dst) -> None:
    """dst = src for arrays of one size, any shapes (flat views: one compiled signature)."""
    run_chunks(_copy_flat, split(src.size), src.reshape(-1), dst.reshape(-1))


@njit(cache=True)
def _plus(loss, total):
    """loss + total, or loss where total is None (the branch is resolved when compiling)."""
    if total is None:
        return loss
    return loss + total


@njit(cache=True)
def softmax_xent_cpu(logits, labels, dlogits, smoothing, weight, batch, total=None):
    """`weight` times the cross-entropy of softmax(logits) against labels smoothed by
    `smoothing`, summed and divided by `batch` (the mean over a data-parallel step's whole
    batch, of which these are one worker's samples), and its gradient with respect to the
    logits, in one numerically stable pass (log-sum-exp). Returns the loss, plus `total` when
    given (the losses of a step's other outputs)."""
    n_batch, classes = logits.shape
    off = smoothing / classes
    on = 1.0 - smoothing + off
    scale = weight / batch
    loss = 0.0
    for n in range(n_batch):
        z = logits[n]
        peak = z[0]
        for c in range(1, classes):     # (z.max() compiles slowly: bench/results/kernels.md)
            peak = max(peak, z[c])
        denom = 0.0
        for c in range(classes):
            denom += np.exp(z[c] - peak)
        log_denom = np.log(denom) + peak
        label = labels[n]
        sample = 0.0
        for c in range(classes):
            target = on if c == label else off
            sample -= target * (z[c] - log_denom)
            dlogits[n, c] = (np.exp(z[c] - log_denom) - target) * scale
        loss += sample
    return _plus(loss * scale, total)


@njit(cache=True, error_model="numpy")
def distill_cpu(outputs, teacher, doutputs, temperature, weight, add, batch, total=None):
    """Hinton et al.'s soft-target loss: `weight` times T^2 times the batch mean of
    KL(softmax(teacher / T) || softmax(outputs / T)) (PyTorch's kl_div(log_softmax(z / T),
    softmax(t / T), reduction='batchmean') * T^2), both softmaxes by log-sum-exp. Its gradient,
    weight T (softmax(z / T) - softmax(t / T)) / N, is added to doutputs where `add` (the
    output's own loss wrote them first), else written. N is `batch`; returned plus `total`,
    as softmax_xent_cpu's."""
    n_batch, classes = outputs.shape
    inverse = 1.0 / temperature
    step = weight * temperature / batch
    loss = 0.0
    for n in range(n_batch):
        z, t = outputs[n], teacher[n]
        peak_z, peak_t = z[0], t[0]
        for c in range(1, classes):
            peak_z, peak_t = max(peak_z, z[c]), max(peak_t, t[c])
        denom_z, denom_t = 0.0, 0.0
        for c in range(classes):
            denom_z += np.exp((z[c] - peak_z) * inverse)
            denom_t += np.exp((t[c] - peak_t) * inverse)
        log_z, log_t = np.log(denom_z), np.log(denom_t)
        for c in range(classes):
            student = (z[c] - peak_z) * inverse - log_z        # log-probabilities
            target = (t[c] - peak_t) * inverse - log_t
            p = np.exp(target)
            loss += p * (target - student)
            gradient = (np.exp(student) - p) * step
            doutputs[n, c] = doutputs[n, c] + gradient if add else gradient
    return _plus(loss * weight * temperature * temperature / batch, total)


# The element-wise losses below: `weight` times the mean over all N*K elements of
# outputs (N, K) against targets of the same shape and dtype (PyTorch's reduction='mean'; N is
# `batch`, as softmax_xent_cpu's), and
# its gradient written to doutputs; returned plus `total` when given, as softmax_xent_cpu's.
# The loss sums in float64; the gradient stays in the arrays' dtype.

@njit(cache=True, error_model="numpy")
def mse_cpu(outputs, targets, doutputs, weight, batch, total=None):
    """Mean squared error; gradient 2 (z - t) weight / (N K)."""
    n_batch, width = outputs.shape
    scale = outputs.dtype.type(weight / (batch * width))
    twice = outputs.dtype.type(2) * scale
    loss = 0.0
    for n in range(n_batch):
        for c in range(width):
            diff = outputs[n, c] - targets[n, c]
            loss += diff * diff
            doutputs[n, c] = twice * diff
    return _plus(loss * (weight / (batch * width)), total)


@njit(cache=True, error_model="numpy")
def l1_cpu(outputs, targets, doutputs, weight, batch, total=None):
    """Mean absolute error; gradient sign(z - t) weight / (N K), 0 where z == t (as PyTorch)."""
    n_batch, width = outputs.shape
    scale = outputs.dtype.type(weight / (batch * width))
    zero = outputs.dtype.type(0)
    loss = 0.0
    for n in range(n_batch):
        for c in range(width):
            diff = outputs[n, c] - targets[n, c]
            loss += abs(diff)
            doutputs[n, c] = scale if diff > zero else -scale if diff < zero else zero
    return _plus(loss * (weight / (batch * width)), total)


@njit(cache=True, error_model="numpy")
def bce_with_logits_cpu(outputs, targets, doutputs, weight, batch, total=None):
    """Mean binary cross-entropy of sigmoid(z) against targets t in [0, 1] (multi-hot labels
    or probabilities), from the logits z: max(z, 0) - z t + log1p(exp(-|z|)), which neither
    overflows nor loses the small terms; gradient sigmoid(z) - t, with sigmoid(z) formed from
    the same exp(-|z|) (at most 1, so no overflow for large |z|)."""
    n_batch, width = outputs.shape
    scale = outputs.dtype.type(weight / (batch * width))
    zero = outputs.dtype.type(0)
    one = outputs.dtype.type(1)
    loss = 0.0
    for n in range(n_batch):
        for c in range(width):
            z = outputs[n, c]
            t = targets[n, c]
            e = np.exp(-abs(z))
            loss += max(z, zero) - z * t + np.log1p(e)
            sigmoid = one / (one + e) if z >= zero else e / (one + e)
            doutputs[n, c] = (sigmoid - t) * scale
    return _plus(loss * (weight / (batch * width)), total)
