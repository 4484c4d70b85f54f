"""What the CPU conv algorithms' backward passes share: per-channel sums of the output gradient,
the fused activation's derivative, and the weight and bias gradients summed from the chunks'
parts in chunk order."""
from __future__ import annotations

from numba import njit

from ....kernels.cpu.chunks import chunk_kernel, span
from ...pointwise.cpu import derive_all

TILE = 32


@njit(cache=True, fastmath=True)
def _total(values):
    """The sum of a flat array, vectorised (fastmath lets the additions reassociate)."""
    total = values.dtype.type(0)
    for i in range(values.size):
        total += values[i]
    return total


@njit(cache=True, inline="always")
def add_sums(sums, planes):
    """sums[c] += the sum of plane c."""
    for c in range(planes.shape[0]):
        sums[c] += _total(planes[c].reshape(-1))


@njit(cache=True, inline="always")
def before_activation(raw, dy, y, act, act_arg):
    """raw = the gradient before the fused activation (code `act`), from its output's gradient
    dy and its output y (flat views; a 3-D slice assignment compiles for seconds)."""
    for i in range(raw.size):
        raw[i] = dy[i]
    derive_all(raw, y, act, act_arg)


@chunk_kernel
def sum_parts(t, chunks, parts, bias_parts, dw_, db, need_dw, has_bias):
    """Chunk t of the weight gradient (when `need_dw`) and of the bias gradient (when
    `has_bias`), each the batch chunks' parts summed in chunk order."""
    if need_dw:
        _weight_grad(t, chunks, parts, dw_)
    if has_bias:
        _bias_grad(t, chunks, bias_parts, db)


@njit(cache=True, inline="always")
def _weight_grad(t, chunks, parts, dw_):
    """Chunk t of the weight gradient: the batch chunks' parts summed in chunk order, each
    group's part transposed back. The transposition goes tile by tile (TILE x TILE), so both the
    strided reads and the writes stay in cache (over twice as fast as in dw's order:
    bench/results/conv.md)."""
    threads, groups, k, og = parts.shape
    total = dw_.reshape(groups, og, k)
    row_tiles = -(-k // TILE)
    lo, hi = span(t, chunks, groups * row_tiles)
    for unit in range(lo, hi):
        g, tile = divmod(unit, row_tiles)
        first_row, last_row = tile * TILE, min(k, (tile + 1) * TILE)
        for first_out in range(0, og, TILE):
            for o in range(first_out, min(og, first_out + TILE)):
                out = total[g, o]
                for row in range(first_row, last_row):
                    value = parts[0, g, row, o]
                    for s in range(1, threads):
                        value += parts[s, g, row, o]
                    out[row] = value


@njit(cache=True, inline="always")
def _bias_grad(t, chunks, bias_parts, db):
    """Chunk t of the bias gradient: the batch chunks' parts summed in chunk order."""
    first, last = span(t, chunks, db.size)
    for o in range(first, last):
        value = bias_parts[0, o]
        for s in range(1, bias_parts.shape[0]):
            value += bias_parts[s, o]
        db[o] = value


@chunk_kernel
def sum_bias_parts(t, chunks, bias_parts, db):
    _bias_grad(t, chunks, bias_parts, db)
