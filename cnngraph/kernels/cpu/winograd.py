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
backward pass runs the adjoint of each step: output tiles -> dM, dU = dM V^T, dV = U^T dM,
then the input and filter transforms' adjoints.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .chunks import chunk_kernel, span


@njit(cache=True)
def input_tiles(padded, m, rows, V, th, tw, wp):
    """V = B^T d B for every tile of the first m samples' padded planes (padded[s, channel]:
    flat, row stride wp); rows[0:4] is a workspace of m * wp values each."""
    run = m * tw
    e0, e1, e2, e3 = rows[0], rows[1], rows[2], rows[3]
    for channel in range(padded.shape[1]):
        for i in range(th):
            top = 2 * i * wp
            for s in range(m):              # B^T d: combinations of the four rows
                plane, at = padded[s, channel], s * wp
                d0, d1 = plane[top:top + wp], plane[top + wp:top + 2 * wp]
                d2, d3 = plane[top + 2 * wp:top + 3 * wp], plane[top + 3 * wp:top + 4 * wp]
                f0, f1, f2, f3 = e0[at:at + wp], e1[at:at + wp], e2[at:at + wp], e3[at:at + wp]
                for q in range(wp):         # (slices from 0: the loop vectorises)
                    f0[q] = d0[q] - d2[q]
                    f1[q] = d1[q] + d2[q]
                    f2[q] = d2[q] - d1[q]
                    f3[q] = d1[q] - d3[q]
            first = i * run
            for a in range(4):              # (B^T d) B: the same along each row
                e = rows[a]
                v0, v1 = V[4 * a, channel, first:first + run], V[4 * a + 1, channel, first:]
                v2, v3 = V[4 * a + 2, channel, first:], V[4 * a + 3, channel, first:]
                for s in range(m):
                    for j in range(tw):
                        k, q = s * tw + j, s * wp + 2 * j
                        v0[k] = e[q] - e[q + 2]
                        v1[k] = e[q + 1] + e[q + 2]
                        v2[k] = e[q + 2] - e[q + 1]
                        v3[k] = e[q + 1] - e[q + 3]


@njit(cache=True)
def input_tiles_adjoint(dV, m, padded, rows, th, tw, wp):
    """padded[s, channel] += the adjoint of input_tiles applied to dV, for the first m samples
    (overlapping tiles add up); rows[0:4] is a workspace of m * wp values each."""
    run = m * tw
    e0, e1, e2, e3 = rows[0], rows[1], rows[2], rows[3]
    for channel in range(padded.shape[1]):
        for i in range(th):
            first = i * run
            for a in range(4):
                e = rows[a]
                for q in range(m * wp):
                    e[q] = 0
                v0, v1 = dV[4 * a, channel, first:first + run], dV[4 * a + 1, channel, first:]
                v2, v3 = dV[4 * a + 2, channel, first:], dV[4 * a + 3, channel, first:]
                for s in range(m):
                    for j in range(tw):
                        k, q = s * tw + j, s * wp + 2 * j
                        e[q] += v0[k]
                        e[q + 1] += v1[k] - v2[k] + v3[k]
                        e[q + 2] += v1[k] + v2[k] - v0[k]
                        e[q + 3] -= v3[k]
            top = 2 * i * wp
            for s in range(m):
                plane, at = padded[s, channel], s * wp
                d0, d1 = plane[top:top + wp], plane[top + wp:top + 2 * wp]
                d2, d3 = plane[top + 2 * wp:top + 3 * wp], plane[top + 3 * wp:top + 4 * wp]
                f0, f1, f2, f3 = e0[at:at + wp], e1[at:at + wp], e2[at:at + wp], e3[at:at + wp]
                for q in range(wp):
                    d0[q] += f0[q]
                    d1[q] += f1[q] - f2[q] + f3[q]
                    d2[q] += f1[q] + f2[q] - f0[q]
                    d3[q] -= f3[q]


@njit(cache=True)
def output_tiles(M, m, out, b, has_bias, th, tw, rows):
    """out[s] (channels x h x w) = A^T M A (+ b) for the first m samples of the stack; rows[0:2]
    is a workspace of 4 * m * tw values each."""
    h, w = out.shape[2], out.shape[3]
    run = m * tw
    p0, p1 = rows[0], rows[1]
    for o in range(out.shape[1]):
        shift = b[o] if has_bias else b.dtype.type(0)
        for i in range(th):
            first = i * run
            for a in range(4):              # A^T M: two combinations of the four rows
                m0, m1 = M[a, o, first:first + run], M[4 + a, o, first:]
                m2, m3 = M[8 + a, o, first:], M[12 + a, o, first:]
                q0, q1 = p0[a * run:], p1[a * run:]
                for k in range(run):
                    q0[k] = m0[k] + m1[k] + m2[k]
                    q1[k] = m1[k] - m2[k] - m3[k]
            for row in range(min(2, h - 2 * i)):
                p = rows[row]
                for s in range(m):          # (A^T M) A, written as pixel pairs
                    dst = out[s, o, 2 * i + row]
                    at = s * tw
                    for j in range(w // 2):
                        dst[2 * j] = p[at + j] + p[run + at + j] + p[2 * run + at + j] + shift
                        dst[2 * j + 1] = p[run + at + j] - p[2 * run + at + j] \
                            - p[3 * run + at + j] + shift
                    if w % 2:
                        j = tw - 1
                        dst[2 * j] = p[at + j] + p[run + at + j] + p[2 * run + at + j] + shift


@njit(cache=True)
def output_tiles_adjoint(grad, m, dM, th, tw, rows):
    """dM = the adjoint of output_tiles applied to grad[s] (channels x h x w) for the first m
    samples (pixels past the edge count as 0); rows[0:2] is a workspace of 4 * m * tw values
    each."""
    h, w = grad.shape[2], grad.shape[3]
    run = m * tw
    p0, p1 = rows[0], rows[1]
    for o in range(grad.shape[1]):
        for i in range(th):
            for row in range(2):
                p = rows[row]
                if 2 * i + row >= h:
                    for k in range(4 * run):
                        p[k] = 0
                    continue
                for s in range(m):
                    src = grad[s, o, 2 * i + row]
                    at = s * tw
                    for j in range(w // 2):
                        g0, g1 = src[2 * j], src[2 * j + 1]
                        p[at + j] = g0
                        p[run + at + j] = g0 + g1
                        p[2 * run + at + j] = g0 - g1
                        p[3 * run + at + j] = -g1
                    if w % 2:
                        j = tw - 1
                        g0 = src[2 * j]
                        p[at + j] = g0
                        p[run + at + j] = g0
                        p[2 * run + at + j] = g0
                        p[3 * run + at + j] = 0
            first = i * run
            for a in range(4):
                m0, m1 = dM[a, o, first:first + run], dM[4 + a, o, first:]
                m2, m3 = dM[8 + a, o, first:], dM[12 + a, o, first:]
                q0, q1 = p0[a * run:], p1[a * run:]
                for k in range(run):
                    m0[k] = q0[k]
                    m1[k] = q0[k] + q1[k]
                    m2[k] = q0[k] - q1[k]
                    m3[k] = -q1[k]


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
