"""Sums that give the same bits in any order and any grouping: the exact reduction of
per-shard gradients (`train.reduction: exact`, train/parallel.py).

Float addition is not associative, so a sum of shards' gradients taken as one process adds
them (shard by shard) and as two workers add them (each its half, then the halves) differ in
the last bits. Here each tensor's values are scaled by a power of two and rounded to int64
fixed point, so that the largest value of any shard of the tensor, on any worker, takes the
top bits of 2^62 / S (S shards in all: their sum cannot overflow); integer sums are exact, so
any order and grouping give the same total, which converts back to the float dtype. The
scale comes from each tensor's largest magnitude over every worker (a MAX-allreduce of one
number a tensor), so all workers agree on it. A value 2^62 / S times smaller than its
tensor's largest is lost (below 2^-59 of it with 8 shards): far below float32's resolution.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .chunks import chunk_kernel, run_chunks, span, split

TOP = 62        # bits of int64 the S shards' values may take together


@chunk_kernel
def _largest(t, chunks, grads, rows, offsets, out):
    """Chunk t of the tensors: each one's largest magnitude over the shards `rows` in out[k]
    (infinity where a value is not finite)."""
    first, last = span(t, chunks, offsets.size - 1)
    for k in range(first, last):
        largest = 0.0
        for s in rows:
            values = grads[s, offsets[k]:offsets[k + 1]]
            for i in range(values.size):
                magnitude = abs(np.float64(values[i]))
                if not magnitude <= largest:      # (NaN: not finite)
                    largest = magnitude if magnitude == magnitude else np.inf
        out[k] = largest


@chunk_kernel
def _to_fixed(t, chunks, grads, rows, offsets, scales, out):
    """Chunk t of the values: the sum over the shards `rows` of each value times its tensor's
    scale, rounded to the nearest integer, in int64."""
    lo, hi = span(t, chunks, grads.shape[1])
    k = np.searchsorted(offsets, lo, side="right") - 1
    for i in range(lo, hi):
        while i >= offsets[k + 1]:
            k += 1
        total = np.int64(0)
        for s in rows:
            total += np.int64(np.rint(np.float64(grads[s, i]) * scales[k]))
        out[i] = total


@chunk_kernel
def _from_fixed(t, chunks, totals, offsets, scales, out):
    """Chunk t of the values: the integer totals scaled back, in out's dtype."""
    lo, hi = span(t, chunks, totals.size)
    k = np.searchsorted(offsets, lo, side="right") - 1
    for i in range(lo, hi):
        while i >= offsets[k + 1]:
            k += 1
        out[i] = np.float64(totals[i]) / scales[k]


def sum_rows(grads: np.ndarray, rows: np.ndarray, offsets: np.ndarray, shards: int,
             out: np.ndarray, across: Callable[[np.ndarray, str], None] | None = None) -> None:
    """`out` = the exact sum of the rows `rows` of `grads` (one row a shard, tensor k the
    columns offsets[k]:offsets[k+1]) and, through `across(array, "MAX" or "SUM")` (an
    allreduce in place), of every worker's, `shards` rows in all."""
    peak = largest(grads, rows, offsets)
    if across is not None:
        across(peak, "MAX")
    scale = scales(peak, shards)
    totals = to_fixed(grads, rows, offsets, scale)
    if across is not None:
        across(totals, "SUM")
    from_fixed(totals, offsets, scale, out)


def largest(grads: np.ndarray, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each tensor's largest magnitude (tensor k: columns offsets[k]:offsets[k+1] of `grads`,
    one row a shard) over the shards `rows`; infinity where a value is NaN or infinite."""
    out = np.zeros(offsets.size - 1)
    run_chunks(_largest, split(grads.size), grads, rows, offsets, out)
    return out


def scales(largest: np.ndarray, shards: int) -> np.ndarray:
    """Each tensor's power-of-two scale for the fixed point of `shards` shards' values whose
    largest magnitude (over every worker) is `largest`: 1 where that is 0 (all zeros), 0 where
    it is not finite (the sum is then NaN)."""
    headroom = TOP - math.ceil(math.log2(max(shards, 1)))
    out = np.ones_like(largest)
    for k, value in enumerate(largest):
        if not math.isfinite(value):
            out[k] = 0.0
        elif value > 0:
            out[k] = math.ldexp(1.0, headroom - math.frexp(value)[1])
    return out


def to_fixed(grads: np.ndarray, rows: np.ndarray, offsets: np.ndarray,
             scale: np.ndarray) -> np.ndarray:
    """The int64 sums over the shards `rows` of `grads` (one row a shard) at each tensor's
    `scale` (`scales`)."""
    out = np.zeros(grads.shape[1], np.int64)
    finite = np.where(scale > 0, scale, 1.0)       # (a non-finite tensor's sum is NaN anyway)
    run_chunks(_to_fixed, split(grads.size), grads, rows, offsets, finite, out)
    return out


def from_fixed(totals: np.ndarray, offsets: np.ndarray, scale: np.ndarray,
               out: np.ndarray) -> None:
    """`out` = the int64 `totals` at each tensor's `scale`, NaN where that is 0."""
    inverse_safe = np.where(scale > 0, scale, 1.0)
    run_chunks(_from_fixed, split(out.size), totals, offsets, inverse_safe, out)
    for k in np.flatnonzero(scale == 0):
        out[offsets[k]:offsets[k + 1]] = np.nan
