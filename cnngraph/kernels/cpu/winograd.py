"""Winograd F(2x2, 3x3): the transforms around the 16 GEMMs of a 3x3, stride-1 convolution.

The output is cut into 2x2 tiles; tile (i, j) reads the 4x4 input patch at padded rows 2i..2i+3
and columns 2j..2j+3. With
    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]],
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]],
each patch d becomes V = B^T d B, each 3x3 filter g becomes U = G g G^T, and the tile's output is
A^T M A where M[xi] = sum over input channels of U[xi] * V[xi] (xi = 4 * row + column of the
4x4 transforms): per xi, one GEMM (out channels x in channels) @ (in channels x tiles). That is
16 multiplies per tile and channel pair instead of 36, 2.25x fewer.

The transforms work on a stack of m samples at once. Transformed values live as
V[xi, channel, tile] and M[xi, channel, tile], the tiles ordered by tile row i, then sample,
then tile column j: tile (s, i, j) is column (i * m + s) * tw + j. So one tile row of every
sample in the stack is one contiguous run, and the per-row work (slicing, loop set-up) is paid
once per stack rather than per sample: small maps have short rows (two tiles at 4x4). The
input transform reads the samples themselves, with no padded copy, and its adjoint writes the
input gradient (see input_tiles for the order of its two steps). The backward pass runs the
adjoint of each step: output tiles -> dM, dU = dM V^T, dV = U^T dM, then the input and filter
transforms' adjoints.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .chunks import chunk_kernel, span


@njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3):
    """B^T times a column (d0, d1, d2, d3), or (d0..d3) B for a row: four values."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, inline="always")
def _bt_adjoint(g0, g1, g2, g3):
    """The adjoint of _bt: B times a column."""
    return g0, g1 - g2 + g3, g1 + g2 - g0, -g3


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3):
    """A^T times a column: two values."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(cache=True, inline="always")
def _pixel(x, s, c, r, i):
    """x[s, c, r, i], or 0 past the ends of the row."""
    return x[s, c, r, i] if 0 <= i < x.shape[3] else x.dtype.type(0)


@njit(cache=True, inline="always")
def _edge_bt(x, s, c, r, j):
    """(d0..d3) B for tile column j of row x[s, c, r] padded by 1."""
    return _bt(_pixel(x, s, c, r, 2 * j - 1), _pixel(x, s, c, r, 2 * j),
               _pixel(x, s, c, r, 2 * j + 1), _pixel(x, s, c, r, 2 * j + 2))


@njit(cache=True)
def input_tiles(x, n, m, rows, V, th, tw):
    """V = B^T d B for every tile of samples n..n+m-1 of x, padded by 1; rows is a workspace of
    8 * (th + 1) * m * tw values.

    First d B along every padded row, once per row (tiles overlap by two rows), into
    rows[b][row parity][row // 2][tile]: the only loop with a stride-2 access, and it reads x
    itself (zeros past the edges, so no padded copy). Then B^T across each tile's four rows for
    a whole channel at once: tile row i's rows 2i..2i+3 are [even, odd][i] and [even, odd][i+1],
    so each of the four loops is one contiguous run (measured against both steps per tile row:
    64 channels at 32x32 took 0.09 ms per sample against 0.14, 512 at 4x4 0.022 against 0.053).
    """
    h, w = x.shape[2], x.shape[3]
    run = m * tw
    half = (th + 1) * run                  # one parity of the rows of one b
    cells = th * run                       # one channel of V
    inner = max(1, (w - 1) // 2)           # tile columns [1, inner) read no pixel past the edge
    zero = x.dtype.type(0)
    for c in range(x.shape[1]):
        for r in range(2 * th + 2):
            at = (r % 2 * (th + 1) + r // 2) * run
            for s in range(m):
                first = at + s * tw
                if r == 0 or r > h:        # a padding row
                    for j in range(tw):
                        for b in range(4):
                            rows[2 * b * half + first + j] = zero
                    continue
                sample, y = n + s, r - 1
                for e in range(tw - inner + 1):    # the edge columns, 0 and [inner, tw)
                    j = inner - 1 + e if e else 0
                    k = first + j
                    rows[k], rows[2 * half + k], rows[4 * half + k], rows[6 * half + k] = \
                        _edge_bt(x, sample, c, y, j)
                for j in range(1, inner):
                    k, q = first + j, 2 * j
                    rows[k], rows[2 * half + k], rows[4 * half + k], rows[6 * half + k] = _bt(
                        x[sample, c, y, q - 1], x[sample, c, y, q], x[sample, c, y, q + 1],
                        x[sample, c, y, q + 2])
        for b in range(4):
            even, odd = rows[2 * b * half:], rows[(2 * b + 1) * half:]
            next_even, next_odd = even[run:], odd[run:]
            v0, v1, v2, v3 = V[b, c, :cells], V[4 + b, c, :cells], V[8 + b, c, :cells], \
                V[12 + b, c, :cells]
            for k in range(cells):
                v0[k], v1[k], v2[k], v3[k] = _bt(even[k], odd[k], next_even[k], next_odd[k])


@njit(cache=True)
def input_tiles_adjoint(dV, dx, n, m, rows, th, tw):
    """dx[n..n+m-1] = the adjoint of input_tiles applied to dV (overlapping tiles add up;
    the padding's gradient is dropped); rows as in input_tiles."""
    h, w = dx.shape[2], dx.shape[3]
    run = m * tw
    half = (th + 1) * run
    cells = th * run
    for c in range(dx.shape[1]):
        # B across the rows; rows 2i + 2 and 2i + 3 of tile row i are rows 2(i + 1) and
        # 2(i + 1) + 1, the next tile row's first two: their gradients add up
        for b in range(4):
            even, odd = rows[2 * b * half:], rows[(2 * b + 1) * half:]
            next_even, next_odd = even[run:], odd[run:]
            v0, v1, v2, v3 = dV[b, c, :cells], dV[4 + b, c, :cells], dV[8 + b, c, :cells], \
                dV[12 + b, c, :cells]
            for k in range(cells, cells + run):
                even[k] = 0
                odd[k] = 0
            for k in range(cells):
                even[k], odd[k], _, _ = _bt_adjoint(v0[k], v1[k], v2[k], v3[k])
            for k in range(cells):
                _, _, below, below_odd = _bt_adjoint(v0[k], v1[k], v2[k], v3[k])
                next_even[k] += below
                next_odd[k] += below_odd
        for r in range(1, h + 1):          # B along each row, into x's row r - 1
            at = (r % 2 * (th + 1) + r // 2) * run
            for s in range(m):
                sample = n + s
                # padded pixel 2u + 1 (x's 2u) gets p1 of tile column u and p3 of u - 1;
                # padded pixel 2u + 2 (x's 2u + 1) gets p2 of u and p0 of u + 1
                for u in range(tw):
                    k = at + s * tw + u
                    _, p1, p2, _ = _bt_adjoint(rows[k], rows[2 * half + k], rows[4 * half + k],
                                               rows[6 * half + k])
                    if u > 0:
                        p1 -= rows[6 * half + k - 1]
                    if u + 1 < tw:
                        p2 += rows[k + 1]
                    dx[sample, c, r - 1, 2 * u] = p1
                    if 2 * u + 1 < w:
                        dx[sample, c, r - 1, 2 * u + 1] = p2


@njit(cache=True)
def output_tiles(M, m, out, b, has_bias, th, tw, rows):
    """out[s] (channels x h x w) = A^T M A (+ b) for the first m samples of the stack; rows is a
    workspace of 8 * th * m * tw values. A^T runs across each tile's rows for a whole channel
    at once, then A along the output rows."""
    h, w = out.shape[2], out.shape[3]
    run = m * tw
    cells = th * run
    for o in range(out.shape[1]):
        shift = b[o] if has_bias else b.dtype.type(0)
        for a in range(4):                 # rows[row][a]: A^T M's output row `row`, column a
            m0, m1, m2, m3 = M[a, o, :cells], M[4 + a, o, :cells], M[8 + a, o, :cells], \
                M[12 + a, o, :cells]
            top, bottom = rows[a * cells:(a + 1) * cells], rows[(4 + a) * cells:(5 + a) * cells]
            for k in range(cells):
                top[k], bottom[k] = _at(m0[k], m1[k], m2[k], m3[k])
        for i in range(th):
            for row in range(min(2, h - 2 * i)):
                p = rows[row * 4 * cells + i * run:]
                for s in range(m):
                    dst = out[s, o, 2 * i + row]
                    for j in range(w // 2):
                        k = s * tw + j
                        dst[2 * j], dst[2 * j + 1] = _at(p[k], p[cells + k], p[2 * cells + k],
                                                         p[3 * cells + k])
                        dst[2 * j] += shift
                        dst[2 * j + 1] += shift
                    if w % 2:
                        k = s * tw + tw - 1
                        dst[w - 1] = p[k] + p[cells + k] + p[2 * cells + k] + shift


@njit(cache=True)
def output_tiles_adjoint(grad, m, dM, th, tw, rows):
    """dM = the adjoint of output_tiles applied to grad[s] (channels x h x w) for the first m
    samples (pixels past the edge count as 0); rows as in output_tiles."""
    h, w = grad.shape[2], grad.shape[3]
    run = m * tw
    cells = th * run
    for o in range(grad.shape[1]):
        for i in range(th):
            for row in range(2):
                p = rows[row * 4 * cells + i * run:]
                if 2 * i + row >= h:
                    for a in range(4):
                        for k in range(run):
                            p[a * cells + k] = 0
                    continue
                for s in range(m):
                    src = grad[s, o, 2 * i + row]
                    for j in range(tw):
                        k = s * tw + j
                        g0 = src[2 * j]
                        g1 = src[2 * j + 1] if 2 * j + 1 < w else src.dtype.type(0)
                        p[k], p[cells + k], p[2 * cells + k], p[3 * cells + k] = \
                            g0, g0 + g1, g0 - g1, -g1
        for a in range(4):
            m0, m1, m2, m3 = dM[a, o, :cells], dM[4 + a, o, :cells], dM[8 + a, o, :cells], \
                dM[12 + a, o, :cells]
            top, bottom = rows[a * cells:(a + 1) * cells], rows[(4 + a) * cells:(5 + a) * cells]
            for k in range(cells):
                m0[k], m1[k], m2[k], m3[k] = top[k], top[k] + bottom[k], top[k] - bottom[k], \
                    -bottom[k]


@njit(cache=True, inline="always")
def _g(a0, a1, a2, half):
    """G times a column (a0, a1, a2): four values."""
    return a0, (a0 + a1 + a2) * half, (a0 - a1 + a2) * half, a2


@njit(cache=True, inline="always")
def _gt(u0, u1, u2, u3, half):
    """G^T times a column (u0, u1, u2, u3): three values."""
    return u0 + (u1 + u2) * half, (u1 - u2) * half, (u1 + u2) * half + u3


@chunk_kernel
def filter_tiles(t, chunks, w, U):
    """U[:, o, c] = G w[o, c] G^T, flattened row-major, for chunk t of the output channels:
    computed in registers for a whole row of input channels, then stored a contiguous row of U
    at a time (through the 3-D arrays, 512 x 512 filters took 19.5 ms, now 1.2, measured)."""
    lo, hi = span(t, chunks, w.shape[0])
    n_in = w.shape[1]
    half = w.dtype.type(0.5)
    rows = np.empty((16, n_in), w.dtype)
    for o in range(lo, hi):
        g = w[o].reshape(-1)
        for c in range(n_in):
            at = 9 * c
            # G g, column by column: rows r0..r3 of three values each
            r00, r10, r20, r30 = _g(g[at], g[at + 3], g[at + 6], half)
            r01, r11, r21, r31 = _g(g[at + 1], g[at + 4], g[at + 7], half)
            r02, r12, r22, r32 = _g(g[at + 2], g[at + 5], g[at + 8], half)
            # (G g) G^T, row by row
            rows[0, c], rows[1, c], rows[2, c], rows[3, c] = _g(r00, r01, r02, half)
            rows[4, c], rows[5, c], rows[6, c], rows[7, c] = _g(r10, r11, r12, half)
            rows[8, c], rows[9, c], rows[10, c], rows[11, c] = _g(r20, r21, r22, half)
            rows[12, c], rows[13, c], rows[14, c], rows[15, c] = _g(r30, r31, r32, half)
        for xi in range(16):
            src, dst = rows[xi], U[xi, o]
            for c in range(n_in):
                dst[c] = src[c]


@chunk_kernel
def filter_tiles_adjoint(t, chunks, parts, dw):
    """dw[o, c] = G^T (the sum of the chunks' parts[:, :, o, c]) G, the adjoint of filter_tiles,
    for chunk t of the output channels; parts are summed in chunk order, a whole row of input
    channels at a time (contiguous, so the sums vectorise)."""
    lo, hi = span(t, chunks, dw.shape[0])
    n_in = dw.shape[1]
    half = dw.dtype.type(0.5)
    sums = np.empty((16, n_in), dw.dtype)
    for o in range(lo, hi):
        for xi in range(16):
            total, first = sums[xi], parts[0, xi, o]
            for c in range(n_in):
                total[c] = first[c]
            for s in range(1, parts.shape[0]):
                more = parts[s, xi, o]
                for c in range(n_in):
                    total[c] += more[c]
        out = dw[o].reshape(-1)
        for c in range(n_in):
            # dU G, row by row: rows r0..r3 of three values each
            r00, r01, r02 = _gt(sums[0, c], sums[1, c], sums[2, c], sums[3, c], half)
            r10, r11, r12 = _gt(sums[4, c], sums[5, c], sums[6, c], sums[7, c], half)
            r20, r21, r22 = _gt(sums[8, c], sums[9, c], sums[10, c], sums[11, c], half)
            r30, r31, r32 = _gt(sums[12, c], sums[13, c], sums[14, c], sums[15, c], half)
            # G^T (dU G), column by column, into dw[o, c] (row-major 3 x 3)
            at = 9 * c
            out[at], out[at + 3], out[at + 6] = _gt(r00, r10, r20, r30, half)
            out[at + 1], out[at + 4], out[at + 7] = _gt(r01, r11, r21, r31, half)
            out[at + 2], out[at + 5], out[at + 8] = _gt(r02, r12, r22, r32, half)
