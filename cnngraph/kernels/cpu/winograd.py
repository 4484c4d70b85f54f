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

Transformed values live as V[xi, channel, tile] and M[xi, channel, tile], tiles of a sample in
row-major order from column `at`. The transforms go a row of tiles at a time, through whole
rows of the padded plane, so their loops are long and vectorise. The backward pass runs the
adjoint of each step: output tiles -> dM, dU = dM V^T, dV = U^T dM, then the input and filter
transforms' adjoints.
"""
from __future__ import annotations

from numba import njit

from .chunks import chunk_kernel, span


@njit(cache=True)
def input_tiles(plane, rows, V, channel, at, th, tw, wp):
    """V[:, channel, at:at + th*tw] = B^T d B for every tile of one padded plane (flat, row
    stride wp); rows[0:4] is a workspace of wp values each."""
    for i in range(th):
        top = 2 * i * wp
        r0, r1 = plane[top:top + wp], plane[top + wp:top + 2 * wp]
        r2, r3 = plane[top + 2 * wp:top + 3 * wp], plane[top + 3 * wp:top + 4 * wp]
        e0, e1, e2, e3 = rows[0], rows[1], rows[2], rows[3]
        for q in range(wp):                 # B^T d: combinations of the four rows
            e0[q] = r0[q] - r2[q]
            e1[q] = r1[q] + r2[q]
            e2[q] = r2[q] - r1[q]
            e3[q] = r1[q] - r3[q]
        first = at + i * tw
        for a in range(4):                  # (B^T d) B: the same along each row
            e = rows[a]
            last = first + tw
            v0, v1 = V[4 * a, channel, first:last], V[4 * a + 1, channel, first:last]
            v2, v3 = V[4 * a + 2, channel, first:last], V[4 * a + 3, channel, first:last]
            for j in range(tw):
                v0[j] = e[2 * j] - e[2 * j + 2]
                v1[j] = e[2 * j + 1] + e[2 * j + 2]
                v2[j] = e[2 * j + 2] - e[2 * j + 1]
                v3[j] = e[2 * j + 1] - e[2 * j + 3]


@njit(cache=True)
def input_tiles_adjoint(dV, channel, at, plane, rows, th, tw, wp):
    """plane += the adjoint of input_tiles applied to dV[:, channel, at:...] (overlapping tiles
    add up); rows[0:4] is a workspace of wp values each."""
    for i in range(th):
        first = at + i * tw
        for a in range(4):
            e = rows[a]
            for q in range(wp):
                e[q] = 0
            last = first + tw
            v0, v1 = dV[4 * a, channel, first:last], dV[4 * a + 1, channel, first:last]
            v2, v3 = dV[4 * a + 2, channel, first:last], dV[4 * a + 3, channel, first:last]
            for j in range(tw):
                e[2 * j] += v0[j]
                e[2 * j + 1] += v1[j] - v2[j] + v3[j]
                e[2 * j + 2] += v1[j] + v2[j] - v0[j]
                e[2 * j + 3] -= v3[j]
        top = 2 * i * wp
        r0, r1 = plane[top:top + wp], plane[top + wp:top + 2 * wp]
        r2, r3 = plane[top + 2 * wp:top + 3 * wp], plane[top + 3 * wp:top + 4 * wp]
        e0, e1, e2, e3 = rows[0], rows[1], rows[2], rows[3]
        for q in range(wp):
            r0[q] += e0[q]
            r1[q] += e1[q] - e2[q] + e3[q]
            r2[q] += e1[q] + e2[q] - e0[q]
            r3[q] -= e3[q]


@njit(cache=True)
def output_tiles(M, channel, out, shift, at, th, tw, rows):
    """out (h x w) = A^T M A + shift for every tile of one output channel; rows[0:2] is a
    workspace of 4 * tw values each."""
    h, w = out.shape
    p0, p1 = rows[0], rows[1]
    for i in range(th):
        first = at + i * tw
        for a in range(4):                  # A^T M: two combinations of the four rows
            m0, m1 = M[a, channel, first:first + tw], M[4 + a, channel, first:first + tw]
            m2, m3 = M[8 + a, channel, first:first + tw], M[12 + a, channel, first:first + tw]
            q0, q1 = p0[a * tw:(a + 1) * tw], p1[a * tw:(a + 1) * tw]
            for j in range(tw):
                q0[j] = m0[j] + m1[j] + m2[j]
                q1[j] = m1[j] - m2[j] - m3[j]
        for row in range(min(2, h - 2 * i)):
            p, dst = rows[row], out[2 * i + row]
            for j in range(w // 2):         # (A^T M) A, written as pixel pairs
                dst[2 * j] = p[j] + p[tw + j] + p[2 * tw + j] + shift
                dst[2 * j + 1] = p[tw + j] - p[2 * tw + j] - p[3 * tw + j] + shift
            if w % 2:
                j = tw - 1
                dst[2 * j] = p[j] + p[tw + j] + p[2 * tw + j] + shift


@njit(cache=True)
def output_tiles_adjoint(grad, dM, channel, at, th, tw, rows):
    """dM[:, channel, at:...] = the adjoint of output_tiles applied to grad (h x w, one output
    channel; pixels past its edge count as 0); rows[0:2] is a workspace of 4 * tw values each."""
    h, w = grad.shape
    for i in range(th):
        for row in range(2):
            p = rows[row]
            if 2 * i + row >= h:
                for j in range(4 * tw):
                    p[j] = 0
                continue
            src = grad[2 * i + row]
            for j in range(w // 2):
                g0, g1 = src[2 * j], src[2 * j + 1]
                p[j] = g0
                p[tw + j] = g0 + g1
                p[2 * tw + j] = g0 - g1
                p[3 * tw + j] = -g1
            if w % 2:
                j = tw - 1
                g0 = src[2 * j]
                p[j] = g0
                p[tw + j] = g0
                p[2 * tw + j] = g0
                p[3 * tw + j] = 0
        first = at + i * tw
        p0, p1 = rows[0], rows[1]
        for a in range(4):
            m0, m1 = dM[a, channel, first:first + tw], dM[4 + a, channel, first:first + tw]
            m2, m3 = dM[8 + a, channel, first:first + tw], dM[12 + a, channel, first:first + tw]
            q0, q1 = p0[a * tw:(a + 1) * tw], p1[a * tw:(a + 1) * tw]
            for j in range(tw):
                m0[j] = q0[j]
                m1[j] = q0[j] + q1[j]
                m2[j] = q0[j] - q1[j]
                m3[j] = -q1[j]


@chunk_kernel
def filter_tiles(t, chunks, w, U):
    """U[:, o, c] = G w[o, c] G^T, flattened row-major, for chunk t of the output channels."""
    lo, hi = span(t, chunks, w.shape[0])
    half = w.dtype.type(0.5)
    for o in range(lo, hi):
        for c in range(w.shape[1]):
            g = w[o, c]
            for col in range(3):            # G g: four rows from three
                a0, a1, a2 = g[0, col], g[1, col], g[2, col]
                U[col, o, c] = a0
                U[4 + col, o, c] = (a0 + a1 + a2) * half
                U[8 + col, o, c] = (a0 - a1 + a2) * half
                U[12 + col, o, c] = a2
            for r in range(4):              # (G g) G^T: the same along each row
                b0, b1, b2 = U[4 * r, o, c], U[4 * r + 1, o, c], U[4 * r + 2, o, c]
                U[4 * r, o, c] = b0
                U[4 * r + 1, o, c] = (b0 + b1 + b2) * half
                U[4 * r + 2, o, c] = (b0 - b1 + b2) * half
                U[4 * r + 3, o, c] = b2


@chunk_kernel
def filter_tiles_adjoint(t, chunks, parts, dw):
    """dw[o, c] = G^T (the sum of the chunks' parts[:, :, o, c]) G, the adjoint of filter_tiles,
    for chunk t of the output channels; parts are summed in chunk order."""
    lo, hi = span(t, chunks, dw.shape[0])
    half = dw.dtype.type(0.5)
    for o in range(lo, hi):
        for c in range(dw.shape[1]):
            d = dw[o, c]
            for r in range(3):
                d[r, 0] = 0
                d[r, 1] = 0
                d[r, 2] = 0
            for r in range(4):
                # the row's four values, then G^T along it: three from four
                u0, u1 = parts[0, 4 * r, o, c], parts[0, 4 * r + 1, o, c]
                u2, u3 = parts[0, 4 * r + 2, o, c], parts[0, 4 * r + 3, o, c]
                for s in range(1, parts.shape[0]):
                    u0 += parts[s, 4 * r, o, c]
                    u1 += parts[s, 4 * r + 1, o, c]
                    u2 += parts[s, 4 * r + 2, o, c]
                    u3 += parts[s, 4 * r + 3, o, c]
                f0 = u0 + (u1 + u2) * half
                f1 = (u1 - u2) * half
                f2 = (u1 + u2) * half + u3
                # G^T down the columns: row r adds G[r, k] times itself to row k of dw
                if r == 0:
                    d[0, 0] += f0
                    d[0, 1] += f1
                    d[0, 2] += f2
                elif r == 3:
                    d[2, 0] += f0
                    d[2, 1] += f1
                    d[2, 2] += f2
                else:
                    middle = half if r == 1 else -half
                    d[0, 0] += f0 * half
                    d[0, 1] += f1 * half
                    d[0, 2] += f2 * half
                    d[1, 0] += f0 * middle
                    d[1, 1] += f1 * middle
                    d[1, 2] += f2 * middle
                    d[2, 0] += f0 * half
                    d[2, 1] += f1 * half
                    d[2, 2] += f2 * half
