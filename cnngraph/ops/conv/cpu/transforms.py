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
once per stack rather than per sample. Each 2-D transform runs as two 1-D passes, along the
rows of every tile and across them, each pass one long contiguous loop over a whole channel's
tiles: loops over the few tile columns of a row ran scalar (~2.5x slower for a 32x32 map:
bench/results/conv.md). A tile's pixels lie 4 apart along a row, so the rows are copied into
workspaces where they lie side by side or per tile column. The backward pass runs the adjoint
of each step: output tiles -> dM, dU = dM V^T, dV = U^T dM, then the input and filter
transforms' adjoints.
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
def _column(T, b, c, cells):
    """T[b + 6a, c, :cells] for a = 0..5: column b of a 6x6 transform, over a channel's tiles."""
    return T[b, c, :cells], T[6 + b, c, :cells], T[12 + b, c, :cells], T[18 + b, c, :cells], \
        T[24 + b, c, :cells], T[30 + b, c, :cells]


@njit(cache=True, inline="always")
def _slots(th, tw, m):
    """Tile slots of the padded rows 0 .. 4 th + 3 of a stack of m samples (4 tw pixels each),
    and the padded rows' slots in one row phase (r % 4)."""
    phase = (th + 1) * m * tw
    return 4 * phase, phase


@njit(cache=True, inline="always")
def _six(T, size):
    """T[0:size], T[size:2 size], ..., T[5 size:6 size]."""
    return T[:size], T[size:2 * size], T[2 * size:3 * size], T[3 * size:4 * size], \
        T[4 * size:5 * size], T[5 * size:6 * size]


@njit(cache=True, inline="always")
def _tile_rows(rows, b, run, phase, plane):
    """Views of the six rows of every tile row, in the input transform's workspace for column
    b: tile row i's rows 4i..4i+5 are [0..3][i], [0][i + 1] and [1][i + 1]."""
    at = b * plane
    return rows[at:], rows[at + phase:], rows[at + 2 * phase:], rows[at + 3 * phase:], \
        rows[at + run:], rows[at + phase + run:]


@njit(cache=True, inline="always")
def _columns(streams, slots):
    """The input transform's column streams: each padded row's pixels 4j .. 4j + 3 of tile
    column j (x's columns 4j - 1 .. 4j + 2), with a slot to spare after the first stream and
    before the last. Returns the streams, the first shifted to the next tile (`right`) and the
    last to the previous one (`left`)."""
    first = streams[:slots + 1]
    last = streams[3 * slots + 1:4 * slots + 2]
    return first[:slots], streams[slots + 1:2 * slots + 1], streams[2 * slots + 1:3 * slots + 1], \
        last[1:], first[1:], last[:slots]


@njit(cache=True, inline="always")
def _ends(slots, tw):
    """Tile column 0 has no tile column on its left and tile column tw - 1 none on its right
    (the padding's zeros are there): index k of every row's first and last tile slots."""
    return range(0, slots, tw), range(tw - 1, slots, tw)


@njit(cache=True, inline="always")
def _padded_row(dst, src, width):
    """dst[:width] = the row src, then zeros to the tile columns' width."""
    for q in range(src.size):
        dst[q] = src[q]
    for q in range(src.size, width):
        dst[q] = 0


@njit(cache=True)
def input_tiles(x, n, m, rows, streams, V, th, tw):
    """V = B^T d B for every tile of samples n..n+m-1 of x, padded by 1; rows and streams are
    workspaces of rows_workspace(th, tw, m) and streams_workspace(th, tw, m) values
    (ops/conv/geometry.py). A loop's loads and its stores take different workspaces: within one
    array, at offsets unknown when it compiles, LLVM left the loops scalar.

    Every step is a long contiguous loop, so that it vectorises (loops over a row's few tile
    columns did not: bench/results/conv.md):
    1. the padded rows are copied in row phases, rows[r % 4][r // 4][sample][4 tw pixels];
    2. one loop splits them into the column streams of _columns (pixel 4j + k of every row's
       tile column j, k = 0..3, the row's tiles one after another);
    3. d B along the rows, tile column j reading its neighbours' pixels in the next and
       previous slots (the padding's zero at the row ends), into rows[b][r % 4][r // 4][tile];
    4. B^T across the six rows of each tile for a whole channel at once: tile row i's rows
       4i..4i+5 are [0..3][i], [0][i + 1] and [1][i + 1], each one contiguous run.
    """
    h = x.shape[2]
    run = m * tw
    slots, phase = _slots(th, tw, m)
    cells = th * run                       # one channel of V
    padded = rows[:4 * slots]              # step 1 (inside step 3's output: read before it)
    e0, e1, e2, e3, right, left = _columns(streams, slots)
    h0, h1, h2, h3, h4, h5 = _six(rows, slots)
    zero, k6 = x.dtype.type(0), _k(x.dtype)
    starts, ends = _ends(slots, tw)
    for c in range(x.shape[1]):
        for r in range(4 * th + 4):
            at = 4 * (r % 4 * phase + r // 4 * run)
            if r == 0 or r > h:
                padded[at:at + 4 * run] = zero
                continue
            for s in range(m):
                _padded_row(padded[at + 4 * s * tw:], x[n + s, c, r - 1], 4 * tw)
        for k in range(slots):
            q = 4 * k
            e0[k], e1[k], e2[k], e3[k] = padded[q], padded[q + 1], padded[q + 2], padded[q + 3]
        for k in range(slots):
            h0[k], h1[k], h2[k], h3[k], h4[k], h5[k] = _bt(left[k], e0[k], e1[k], e2[k], e3[k],
                                                            right[k], k6)
        for k in starts:                   # only h0 reads the left neighbour
            h0[k] = _bt(zero, e0[k], e1[k], e2[k], e3[k], zero, k6)[0]
        for k in ends:                     # only h5 reads the right one
            h5[k] = _bt(zero, e0[k], e1[k], e2[k], e3[k], zero, k6)[5]
        for b in range(6):
            d0, d1, d2, d3, d4, d5 = _tile_rows(rows, b, run, phase, slots)
            v0, v1, v2, v3, v4, v5 = _column(V, b, c, cells)
            for k in range(cells):
                v0[k], v1[k], v2[k], v3[k], v4[k], v5[k] = _bt(
                    d0[k], d1[k], d2[k], d3[k], d4[k], d5[k], k6)


@njit(cache=True)
def input_tiles_adjoint(dV, dx, n, m, rows, streams, th, tw):
    """dx[n..n+m-1] = the adjoint of input_tiles applied to dV (overlapping tiles add up; the
    padding's gradient is dropped); rows and streams as in input_tiles, whose steps run
    backwards."""
    h, w = dx.shape[2], dx.shape[3]
    run = m * tw
    slots, phase = _slots(th, tw, m)
    cells = th * run
    e0, e1, e2, e3, right, left = _columns(streams, slots)
    # the gradients of the left and right neighbours: 2 more streams after _columns', with a
    # slot to spare before `to_right` (tile k - 1's right neighbour is tile k) and after
    # `to_left` (tile k + 1's left neighbour is tile k)
    at = 4 * slots + 2
    to_right_all = streams[at:at + slots + 1]
    to_left_all = streams[at + slots + 1:at + 2 * slots + 2]
    to_right, from_left = to_right_all[1:], to_right_all[:slots]
    to_left, from_right = to_left_all[:slots], to_left_all[1:]
    h0, h1, h2, h3, h4, h5 = _six(rows, slots)
    padded = rows[:4 * slots]
    zero, k6 = dx.dtype.type(0), _k(dx.dtype)
    starts, ends = _ends(slots, tw)
    to_right_all[0] = zero
    to_left_all[slots] = zero
    for c in range(dx.shape[1]):
        # B across the rows. Rows 4 and 5 of tile row i are rows 0 and 1 of tile row i + 1, so
        # slot row i of phases 0 and 1 adds the gradients of tile rows i and i - 1 (run slots
        # before): each loop gathers them, reading dV and writing rows only
        for b in range(6):
            d0, d1, d2, d3, _, _ = _tile_rows(rows, b, run, phase, slots)
            v0, v1, v2, v3, v4, v5 = _column(dV, b, c, cells)
            for k in range(run):                   # slot row 0: tile row 0 alone
                d0[k], d1[k], d2[k], d3[k], _, _ = _bt_adjoint(
                    v0[k], v1[k], v2[k], v3[k], v4[k], v5[k], k6)
            u0, u1, u2, u3, u4, u5 = v0[run:], v1[run:], v2[run:], v3[run:], v4[run:], v5[run:]
            f0, f1, f2, f3 = d0[run:], d1[run:], d2[run:], d3[run:]
            for k in range(cells - run):           # slot rows 1 .. th - 1
                _, _, _, _, p4, p5 = _bt_adjoint(v0[k], v1[k], v2[k], v3[k], v4[k], v5[k], k6)
                g0, g1, f2[k], f3[k], _, _ = _bt_adjoint(u0[k], u1[k], u2[k], u3[k], u4[k],
                                                         u5[k], k6)
                f0[k], f1[k] = g0 + p4, g1 + p5
            u0, u1, u2 = v0[cells - run:], v1[cells - run:], v2[cells - run:]
            u3, u4, u5 = v3[cells - run:], v4[cells - run:], v5[cells - run:]
            f0, f1, f2, f3 = d0[cells:], d1[cells:], d2[cells:], d3[cells:]
            for k in range(run):                   # slot row th: the last tile row's rows 4, 5
                _, _, _, _, f0[k], f1[k] = _bt_adjoint(u0[k], u1[k], u2[k], u3[k], u4[k], u5[k],
                                                       k6)
                f2[k], f3[k] = zero, zero          # rows 4 th + 2 and 3: read by no tile
        for k in range(slots):
            to_left[k], e0[k], e1[k], e2[k], e3[k], to_right[k] = _bt_adjoint(
                h0[k], h1[k], h2[k], h3[k], h4[k], h5[k], k6)
        for k in starts:
            to_left[k] = zero
        for k in ends:
            to_right[k] = zero
        for k in range(slots):
            q = 4 * k
            padded[q], padded[q + 1] = e0[k] + from_left[k], e1[k]
            padded[q + 2], padded[q + 3] = e2[k], e3[k] + from_right[k]
        for r in range(1, h + 1):
            at = 4 * (r % 4 * phase + r // 4 * run)
            for s in range(m):
                src, dst = padded[at + 4 * s * tw:], dx[n + s, c, r - 1]
                for q in range(w):
                    dst[q] = src[q]


@njit(cache=True, inline="always")
def _output_rows(rows, col, cells):
    """Views of A^T M's four output rows for column col, in the output transform's workspace."""
    return rows[col * cells:(col + 1) * cells], rows[(6 + col) * cells:(7 + col) * cells], \
        rows[(12 + col) * cells:(13 + col) * cells], rows[(18 + col) * cells:(19 + col) * cells]


@njit(cache=True)
def output_tiles(M, m, out, b, has_bias, th, tw, rows, streams, first, last):
    """out[s] (channels x h x w) = A^T M A (+ b) for the first m samples of the stack, channels
    first .. last - 1; rows and streams as in input_tiles. As there, every step is a long
    contiguous loop: A^T across each tile's rows for a whole channel at once (into
    rows[row][col][tile]), then A along the output rows into each tile's four pixels side by
    side (streams[row][tile row][sample][4 tw]), then the rows are copied out, cut to the map,
    with the bias."""
    h, w = out.shape[2], out.shape[3]
    run = m * tw
    cells = th * run
    pixels = streams
    k6 = _k(out.dtype)
    for o in range(first, last):
        shift = b[o] if has_bias else b.dtype.type(0)
        for col in range(6):               # rows[row][col]: A^T M's output row `row`
            m0, m1, m2, m3, m4, m5 = _column(M, col, o, cells)
            t0, t1, t2, t3 = _output_rows(rows, col, cells)
            for k in range(cells):
                t0[k], t1[k], t2[k], t3[k] = _at(m0[k], m1[k], m2[k], m3[k], m4[k], m5[k], k6)
        for row in range(4):
            p0, p1, p2, p3, p4, p5 = _six(rows[6 * row * cells:], cells)
            line = pixels[4 * row * cells:]
            for k in range(cells):
                q = 4 * k
                line[q], line[q + 1], line[q + 2], line[q + 3] = _at(p0[k], p1[k], p2[k], p3[k],
                                                                     p4[k], p5[k], k6)
        for i in range(th):
            for row in range(min(4, h - 4 * i)):
                at = 4 * (row * cells + i * run)
                for s in range(m):
                    src, dst = pixels[at + 4 * s * tw:], out[s, o, 4 * i + row]
                    for q in range(w):
                        dst[q] = src[q] + shift


@njit(cache=True)
def output_tiles_adjoint(grad, m, dM, th, tw, rows, streams):
    """dM = the adjoint of output_tiles applied to grad[s] (channels x h x w) for the first m
    samples (pixels past the edge count as 0); rows and streams as in output_tiles, whose steps
    run backwards."""
    h = grad.shape[2]
    run = m * tw
    cells = th * run
    pixels = streams
    zero, k6 = grad.dtype.type(0), _k(grad.dtype)
    for o in range(grad.shape[1]):
        for i in range(th):
            for row in range(4):
                at = 4 * (row * cells + i * run)
                if 4 * i + row >= h:
                    pixels[at:at + 4 * run] = zero
                    continue
                for s in range(m):
                    _padded_row(pixels[at + 4 * s * tw:], grad[s, o, 4 * i + row], 4 * tw)
        for row in range(4):
            p0, p1, p2, p3, p4, p5 = _six(rows[6 * row * cells:], cells)
            line = pixels[4 * row * cells:]
            for k in range(cells):
                q = 4 * k
                p0[k], p1[k], p2[k], p3[k], p4[k], p5[k] = _at_adjoint(
                    line[q], line[q + 1], line[q + 2], line[q + 3], k6)
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
