"""Winograd F(4x4, 3x3): the transforms around the 36 GEMMs of a 3x3, stride-1 convolution.

The output is cut into 4x4 tiles; tile (i, j) reads the 6x6 input patch at padded rows
4i..4i+5 and columns 4j..4j+5 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", with the points 0, +-1, +-2). With
    B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    G = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6],
         [1/24, -1/12, 1/6], [0, 0, 1]],
    A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
each patch d becomes V = B^T d B, each 3x3 filter g becomes U = G g G^T, and the tile's output is
A^T M A where M[xi] = sum over input channels of U[xi] * V[xi] (xi = 6 * row + column of the
6x6 transforms): per xi, one GEMM (out channels x in channels) @ (in channels x tiles). That is
36 multiplies per tile and channel pair instead of 144, 4x fewer (F(2x2, 3x3) saves 2.25x).

The transforms work on a stack of m samples at once. Transformed values live as
V[xi, channel, tile] and M[xi, channel, tile], the tiles ordered by tile row i, then sample,
then tile column j: tile (s, i, j) is column (i * m + s) * tw + j. So one tile row of every
sample in the stack is one contiguous run, and the per-row work (slicing, loop set-up) is paid
once per stack rather than per sample. Each 2-D transform runs as two 1-D passes: along the
rows of every tile at once into a workspace `rows`, then across them in contiguous loops over a
whole channel. The input transform reads the samples themselves, with zeros past the edges (no
padded copy), and its adjoint writes the input gradient. The backward pass runs the adjoint of
each step: output tiles -> dM, dU = dM V^T, dV = U^T dM, then the input and filter transforms'
adjoints.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ....kernels.cpu.chunks import chunk_kernel, span
from ..geometry import XI


@njit(cache=True, inline="always")
def _k(dtype):
    """The transforms' integer constants 2, 4, 5 and 8 in the arrays' dtype (an integer literal
    would make Numba compute a float32 transform in float64)."""
    f = dtype.type
    return f(2), f(4), f(5), f(8)


@njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3, d4, d5, k):
    """B^T times a column (d0..d5), or (d0..d5) B for a row: six values."""
    two, four, five, _ = k
    return (four * d0 - five * d2 + d4, d3 + d4 - four * (d1 + d2), four * (d1 - d2) + d4 - d3,
            two * (d3 - d1) + d4 - d2, two * (d1 - d3) + d4 - d2, four * d1 - five * d3 + d5)


@njit(cache=True, inline="always")
def _bt_adjoint(g0, g1, g2, g3, g4, g5, k):
    """The adjoint of _bt: B times a column."""
    two, four, five, _ = k
    return (four * g0, four * (g2 - g1 + g5) + two * (g4 - g3),
            -five * g0 - four * (g1 + g2) - g3 - g4, g1 - g2 + two * (g3 - g4) - five * g5,
            g0 + g1 + g2 + g3 + g4, g5)


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3, m4, m5, k):
    """A^T times a column: four values."""
    two, four, _, eight = k
    plus, minus = m1 + m2, m1 - m2
    plus2, minus2 = m3 + m4, m3 - m4
    return m0 + plus + plus2, minus + two * minus2, plus + four * plus2, \
        minus + eight * minus2 + m5


@njit(cache=True, inline="always")
def _at_adjoint(g0, g1, g2, g3, k):
    """The adjoint of _at: A times a column (g0..g3), six values."""
    two, four, _, eight = k
    even, odd = g0 + g2, g1 + g3
    return (g0, even + odd, even - odd, g0 + two * g1 + four * g2 + eight * g3,
            g0 - two * g1 + four * g2 - eight * g3, g3)


@njit(cache=True, inline="always")
def _pixel(x, s, c, r, i):
    """x[s, c, r, i], or 0 past the ends of the row."""
    return x[s, c, r, i] if 0 <= i < x.shape[3] else x.dtype.type(0)


@njit(cache=True, inline="always")
def _edge_bt(x, s, c, r, j, k):
    """(d0..d5) B for tile column j of row x[s, c, r] padded by 1."""
    q = 4 * j - 1
    return _bt(_pixel(x, s, c, r, q), _pixel(x, s, c, r, q + 1), _pixel(x, s, c, r, q + 2),
               _pixel(x, s, c, r, q + 3), _pixel(x, s, c, r, q + 4), _pixel(x, s, c, r, q + 5),
               k)


@njit(cache=True, inline="always")
def _column(T, b, c, cells):
    """T[b + 6a, c, :cells] for a = 0..5: column b of a 6x6 transform, over a channel's tiles."""
    return T[b, c, :cells], T[6 + b, c, :cells], T[12 + b, c, :cells], T[18 + b, c, :cells], \
        T[24 + b, c, :cells], T[30 + b, c, :cells]


@njit(cache=True, inline="always")
def _tile_rows(rows, b, run, phase, plane):
    """Views of the six rows of every tile row, in the input transform's workspace for column
    b: tile row i's rows 4i..4i+5 are [0..3][i], [0][i + 1] and [1][i + 1]."""
    at = b * plane
    return rows[at:], rows[at + phase:], rows[at + 2 * phase:], rows[at + 3 * phase:], \
        rows[at + run:], rows[at + phase + run:]


@njit(cache=True, inline="always")
def _output_rows(rows, col, cells):
    """Views of A^T M's four output rows for column col, in the output transform's workspace."""
    return rows[col * cells:(col + 1) * cells], rows[(6 + col) * cells:(7 + col) * cells], \
        rows[(12 + col) * cells:(13 + col) * cells], rows[(18 + col) * cells:(19 + col) * cells]


@njit(cache=True)
def input_tiles(x, n, m, rows, V, th, tw):
    """V = B^T d B for every tile of samples n..n+m-1 of x, padded by 1; rows is a workspace of
    rows_workspace(th, tw, m) values (ops/conv/geometry.py).

    First d B along every padded row, once per row (tiles overlap by two rows), into
    rows[b][row % 4][row // 4][tile]: it reads x itself (zeros past the edges, so no padded
    copy). Then B^T across each tile's six rows for a whole channel at once: tile row i's rows
    4i..4i+5 are [0..3][i], [0][i + 1] and [1][i + 1], so each of the six is one contiguous run.
    """
    h, w = x.shape[2], x.shape[3]
    run = m * tw
    phase = (th + 1) * run                 # the rows of one b with one row % 4
    plane = 4 * phase                      # one b
    cells = th * run                       # one channel of V
    inner = max(1, (w - 5) // 4 + 1)       # tile columns [1, inner) read no pixel past the edge
    zero, k6 = x.dtype.type(0), _k(x.dtype)
    for c in range(x.shape[1]):
        for r in range(4 * th + 2):
            at = r % 4 * phase + r // 4 * run
            for s in range(m):
                first = at + s * tw
                if r == 0 or r > h:        # a padding row
                    for b in range(6):
                        for j in range(tw):
                            rows[b * plane + first + j] = zero
                    continue
                sample, y = n + s, r - 1
                for e in range(tw - inner + 1):    # the edge columns, 0 and [inner, tw)
                    j = inner - 1 + e if e else 0
                    k = first + j
                    rows[k], rows[plane + k], rows[2 * plane + k], rows[3 * plane + k], \
                        rows[4 * plane + k], rows[5 * plane + k] = _edge_bt(x, sample, c, y, j, k6)
                row = x[sample, c, y]
                for j in range(1, inner):
                    k, q = first + j, 4 * j - 1
                    rows[k], rows[plane + k], rows[2 * plane + k], rows[3 * plane + k], \
                        rows[4 * plane + k], rows[5 * plane + k] = _bt(
                            row[q], row[q + 1], row[q + 2], row[q + 3], row[q + 4], row[q + 5],
                            k6)
        for b in range(6):
            d0, d1, d2, d3, d4, d5 = _tile_rows(rows, b, run, phase, plane)
            v0, v1, v2, v3, v4, v5 = _column(V, b, c, cells)
            for k in range(cells):
                v0[k], v1[k], v2[k], v3[k], v4[k], v5[k] = _bt(
                    d0[k], d1[k], d2[k], d3[k], d4[k], d5[k], k6)


@njit(cache=True)
def input_tiles_adjoint(dV, dx, n, m, rows, th, tw):
    """dx[n..n+m-1] = the adjoint of input_tiles applied to dV (overlapping tiles add up; the
    padding's gradient is dropped); rows as in input_tiles."""
    h, w = dx.shape[2], dx.shape[3]
    run = m * tw
    phase = (th + 1) * run
    plane = 4 * phase
    cells = th * run
    k6 = _k(dx.dtype)
    for c in range(dx.shape[1]):
        # B across the rows; rows 4 and 5 of tile row i are rows 0 and 1 of tile row i + 1:
        # their gradients add up
        for b in range(6):
            d0, d1, d2, d3, d4, d5 = _tile_rows(rows, b, run, phase, plane)
            v0, v1, v2, v3, v4, v5 = _column(dV, b, c, cells)
            for k in range(cells, cells + run):
                d0[k] = 0
                d1[k] = 0
            for k in range(cells):
                d0[k], d1[k], d2[k], d3[k], _, _ = _bt_adjoint(
                    v0[k], v1[k], v2[k], v3[k], v4[k], v5[k], k6)
            for k in range(cells):
                _, _, _, _, p4, p5 = _bt_adjoint(v0[k], v1[k], v2[k], v3[k], v4[k], v5[k], k6)
                d4[k] += p4
                d5[k] += p5
        # B along each row, into x's row r - 1: tile column j's pixels 4j - 1 .. 4j + 4, the
        # first two shared with tile column j - 1
        for r in range(1, h + 1):
            at = r % 4 * phase + r // 4 * run
            for s in range(m):
                first = at + s * tw
                out = dx[n + s, c, r - 1]
                for j in range(tw):
                    k = first + j
                    p0, p1, p2, p3, p4, p5 = _bt_adjoint(
                        rows[k], rows[plane + k], rows[2 * plane + k], rows[3 * plane + k],
                        rows[4 * plane + k], rows[5 * plane + k], k6)
                    q = 4 * j - 1
                    if j == 0:
                        out[0] = p1
                    else:
                        out[q] += p0
                        if q + 1 < w:
                            out[q + 1] += p1
                    if q + 2 < w:
                        out[q + 2] = p2
                    if q + 3 < w:
                        out[q + 3] = p3
                    if q + 4 < w:
                        out[q + 4] = p4
                    if q + 5 < w:
                        out[q + 5] = p5


@njit(cache=True)
def output_tiles(M, m, out, b, has_bias, th, tw, rows, first, last):
    """out[s] (channels x h x w) = A^T M A (+ b) for the first m samples of the stack, channels
    first .. last - 1; rows is a workspace of rows_workspace(th, tw, m) values. A^T runs across
    each tile's rows for a whole channel at once, then A along the output rows."""
    h, w = out.shape[2], out.shape[3]
    run = m * tw
    cells = th * run
    full = w // 4                          # tile columns whose four pixels all lie inside
    k6 = _k(out.dtype)
    for o in range(first, last):
        shift = b[o] if has_bias else b.dtype.type(0)
        for col in range(6):               # rows[row][col]: A^T M's output row `row`
            m0, m1, m2, m3, m4, m5 = _column(M, col, o, cells)
            t0, t1, t2, t3 = _output_rows(rows, col, cells)
            for k in range(cells):
                t0[k], t1[k], t2[k], t3[k] = _at(m0[k], m1[k], m2[k], m3[k], m4[k], m5[k], k6)
        for i in range(th):
            for row in range(min(4, h - 4 * i)):
                p = rows[row * 6 * cells + i * run:]
                for s in range(m):
                    dst = out[s, o, 4 * i + row]
                    for j in range(tw):
                        k = s * tw + j
                        o0, o1, o2, o3 = _at(p[k], p[cells + k], p[2 * cells + k],
                                             p[3 * cells + k], p[4 * cells + k],
                                             p[5 * cells + k], k6)
                        q = 4 * j
                        if j < full:
                            dst[q], dst[q + 1] = o0 + shift, o1 + shift
                            dst[q + 2], dst[q + 3] = o2 + shift, o3 + shift
                        else:
                            dst[q] = o0 + shift
                            if q + 1 < w:
                                dst[q + 1] = o1 + shift
                            if q + 2 < w:
                                dst[q + 2] = o2 + shift


@njit(cache=True)
def output_tiles_adjoint(grad, m, dM, th, tw, rows):
    """dM = the adjoint of output_tiles applied to grad[s] (channels x h x w) for the first m
    samples (pixels past the edge count as 0); rows as in output_tiles."""
    h, w = grad.shape[2], grad.shape[3]
    run = m * tw
    cells = th * run
    zero, k6 = grad.dtype.type(0), _k(grad.dtype)
    for o in range(grad.shape[1]):
        for i in range(th):
            for row in range(4):
                p = rows[row * 6 * cells + i * run:]
                if 4 * i + row >= h:
                    for col in range(6):
                        for k in range(run):
                            p[col * cells + k] = zero
                    continue
                for s in range(m):
                    src = grad[s, o, 4 * i + row]
                    for j in range(tw):
                        k, q = s * tw + j, 4 * j
                        g0 = src[q]
                        g1 = src[q + 1] if q + 1 < w else zero
                        g2 = src[q + 2] if q + 2 < w else zero
                        g3 = src[q + 3] if q + 3 < w else zero
                        p[k], p[cells + k], p[2 * cells + k], p[3 * cells + k], \
                            p[4 * cells + k], p[5 * cells + k] = _at_adjoint(g0, g1, g2, g3, k6)
        for col in range(6):
            m0, m1, m2, m3, m4, m5 = _column(dM, col, o, cells)
            t0, t1, t2, t3 = _output_rows(rows, col, cells)
            for k in range(cells):
                m0[k], m1[k], m2[k], m3[k], m4[k], m5[k] = _at_adjoint(t0[k], t1[k], t2[k],
                                                                       t3[k], k6)


@njit(cache=True, inline="always")
def _fractions(dtype):
    """G's constants 1/4, 1/6, 1/12 and 1/24 in the weights' dtype."""
    f = dtype.type
    return f(1 / 4), f(1 / 6), f(1 / 12), f(1 / 24)


@njit(cache=True, inline="always")
def _g(a0, a1, a2, fractions):
    """G times a column (a0, a1, a2): six values."""
    quarter, sixth, twelfth, twenty_fourth = fractions
    outer, ends = a0 + a2, a0 * twenty_fourth + a2 * sixth
    return (a0 * quarter, -(outer + a1) * sixth, (a1 - outer) * sixth, ends + a1 * twelfth,
            ends - a1 * twelfth, a2)


@njit(cache=True, inline="always")
def _gt(u0, u1, u2, u3, u4, u5, fractions):
    """G^T times a column (u0..u5): three values."""
    quarter, sixth, twelfth, twenty_fourth = fractions
    return (u0 * quarter - (u1 + u2) * sixth + (u3 + u4) * twenty_fourth,
            (u2 - u1) * sixth + (u3 - u4) * twelfth, (u3 + u4 - u1 - u2) * sixth + u5)


@chunk_kernel
def filter_tiles(t, chunks, w, U):
    """U[:, o, c] = G w[o, c] G^T, flattened row-major, for chunk t of the output channels. Each
    step runs over a whole row of input channels, so its loads and stores are contiguous and
    the loops vectorise: G g's 18 rows (6 x 3 per channel), then U's 36 rows straight into U
    (~3x faster than through a row buffer: bench/results/conv.md)."""
    lo, hi = span(t, chunks, w.shape[0])
    n_in = w.shape[1]
    fractions = _fractions(w.dtype)
    taps = np.empty((9, n_in), w.dtype)
    gg = np.empty((18, n_in), w.dtype)     # (G g)[a, column] at row 3 * a + column
    for o in range(lo, hi):
        g = w[o].reshape(n_in, 9)
        for c in range(n_in):
            for tap in range(9):
                taps[tap, c] = g[c, tap]
        for column in range(3):
            a0, a1, a2 = taps[column], taps[3 + column], taps[6 + column]
            r0, r1, r2 = gg[column], gg[3 + column], gg[6 + column]
            r3, r4, r5 = gg[9 + column], gg[12 + column], gg[15 + column]
            for c in range(n_in):
                r0[c], r1[c], r2[c], r3[c], r4[c], r5[c] = _g(a0[c], a1[c], a2[c], fractions)
        for a in range(6):
            b0, b1, b2 = gg[3 * a], gg[3 * a + 1], gg[3 * a + 2]
            u0, u1, u2 = U[6 * a, o], U[6 * a + 1, o], U[6 * a + 2, o]
            u3, u4, u5 = U[6 * a + 3, o], U[6 * a + 4, o], U[6 * a + 5, o]
            for c in range(n_in):
                u0[c], u1[c], u2[c], u3[c], u4[c], u5[c] = _g(b0[c], b1[c], b2[c], fractions)


@chunk_kernel
def filter_tiles_adjoint(t, chunks, parts, dw):
    """dw[o, c] = G^T (the sum of the chunks' parts[:, :, o, c]) G, the adjoint of filter_tiles,
    for chunk t of the output channels; parts are summed in chunk order. As filter_tiles, every
    step runs over a whole row of input channels."""
    lo, hi = span(t, chunks, dw.shape[0])
    n_in = dw.shape[1]
    fractions = _fractions(dw.dtype)
    sums = np.empty((XI, n_in), dw.dtype)
    gt = np.empty((18, n_in), dw.dtype)    # (dU G)[a, column] at row 3 * a + column
    taps = np.empty((9, n_in), dw.dtype)
    for o in range(lo, hi):
        for xi in range(XI):
            total, first = sums[xi], parts[0, xi, o]
            for c in range(n_in):
                total[c] = first[c]
            for s in range(1, parts.shape[0]):
                more = parts[s, xi, o]
                for c in range(n_in):
                    total[c] += more[c]
        for a in range(6):
            u0, u1, u2 = sums[6 * a], sums[6 * a + 1], sums[6 * a + 2]
            u3, u4, u5 = sums[6 * a + 3], sums[6 * a + 4], sums[6 * a + 5]
            r0, r1, r2 = gt[3 * a], gt[3 * a + 1], gt[3 * a + 2]
            for c in range(n_in):
                r0[c], r1[c], r2[c] = _gt(u0[c], u1[c], u2[c], u3[c], u4[c], u5[c], fractions)
        for column in range(3):
            s0, s1, s2 = gt[column], gt[3 + column], gt[6 + column]
            s3, s4, s5 = gt[9 + column], gt[12 + column], gt[15 + column]
            a0, a1, a2 = taps[column], taps[3 + column], taps[6 + column]
            for c in range(n_in):
                a0[c], a1[c], a2[c] = _gt(s0[c], s1[c], s2[c], s3[c], s4[c], s5[c], fractions)
        out = dw[o].reshape(n_in, 9)
        for c in range(n_in):
            for tap in range(9):
                out[c, tap] = taps[tap, c]
