"""Kernels the step code needs beside the ops: gradient sums, copies, the fused loss.

Kernels write element loops rather than array expressions on views (`y[n] += b`): inside
Numba those allocate a temporary per evaluation, which a step must not do.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _sum_flat(t, chunks, out_all, parts):
    """(Each chunk slices its part and loops from 0, so that the loops vectorise.)"""
    lo, hi = span(t, chunks, out_all.size)
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
def softmax_xent_cpu(logits, labels, dlogits, smoothing):
    """Mean cross-entropy of softmax(logits) against labels smoothed by `smoothing`, and its
    gradient with respect to the logits, in one numerically stable pass (log-sum-exp)."""
    n_batch, classes = logits.shape
    off = smoothing / classes
    on = 1.0 - smoothing + off
    total = 0.0
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
            dlogits[n, c] = (np.exp(z[c] - log_denom) - target) / n_batch
        total += sample
    return total / n_batch
