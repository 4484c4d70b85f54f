"""Winograd F(4x4, 3x3)'s tile transforms against NumPy's matrix products, and each transform's
adjoint as its adjoint (<T a, b> = <a, T* b>). (Every eligible conv case in
tests/ops/test_conv.py also runs through them, against PyTorch.)"""
import numpy as np
import pytest

from cnngraph.ops.conv.cpu.transforms import (
    filter_tiles,
    filter_tiles_adjoint,
    input_tiles,
    input_tiles_adjoint,
    output_tiles,
    output_tiles_adjoint,
)
from cnngraph.ops.conv.geometry import XI, rows_workspace, streams_workspace

B_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], np.float64)
# maps: one tile, tiles cut by the edge at every remainder, rows with no interior tile column
# and rows with several
MAPS = [(1, 1), (2, 3), (4, 4), (5, 2), (6, 7), (8, 8), (9, 12), (13, 11), (16, 16)]


def tiles(h, w):
    return (h + 3) // 4, (w + 3) // 4


def test_the_matrices_compute_a_3x3_correlation():
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    tile = A_T @ ((G @ g @ G.T) * (B_T @ d @ B_T.T)) @ A_T.T
    direct = [[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(4)] for i in range(4)]
    np.testing.assert_allclose(tile, direct, atol=1e-12)


def tile_order(th, tw, m):
    """(sample, tile row, tile column) of each column of V and M: tile row, then sample, then
    tile column."""
    return [(s, i, j) for i in range(th) for s in range(m) for j in range(tw)]


def reference_inputs(x, th, tw):
    """V[xi, c, column] = (B^T d B)[xi] for the 6x6 patch d of x padded by 1."""
    m, channels, h, w = x.shape
    padded = np.zeros((m, channels, 4 * th + 2, 4 * tw + 2))
    padded[:, :, 1:h + 1, 1:w + 1] = x
    order = tile_order(th, tw, m)
    V = np.empty((XI, channels, len(order)))
    for k, (s, i, j) in enumerate(order):
        patch = padded[s, :, 4 * i:4 * i + 6, 4 * j:4 * j + 6]
        V[:, :, k] = np.einsum("ab,cbd,ed->aec", B_T, patch, B_T).reshape(XI, channels)
    return V


def reference_outputs(M, b, m, h, w, th, tw):
    """out[s, o] from the tiles A^T M A, cut to h x w, plus the bias."""
    out = np.zeros((m, M.shape[1], 4 * th, 4 * tw))
    for k, (s, i, j) in enumerate(tile_order(th, tw, m)):
        tile = M[:, :, k].T.reshape(-1, 6, 6)
        out[s, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4] = np.einsum("ab,obd,ed->oae", A_T, tile, A_T)
    return out[:, :, :h, :w] + b[None, :, None, None]


def workspaces(th, tw, m):
    """The transforms' two workspaces, NaN: stale values show."""
    return np.full(rows_workspace(th, tw, m), np.nan, np.float32), \
        np.full(streams_workspace(th, tw, m), np.nan, np.float32)


@pytest.mark.parametrize("h, w", MAPS)
def test_input_tiles_and_adjoint(h, w):
    rng = np.random.default_rng(h * 10 + w)
    (th, tw), n, m, channels = tiles(h, w), 1, 3, 2
    x = rng.standard_normal((5, channels, h, w)).astype(np.float32)
    V = np.full((XI, channels, m * th * tw + 3), np.nan, np.float32)  # wider, as in a stack
    input_tiles(x, n, m, *workspaces(th, tw, m), V, th, tw)
    cells = m * th * tw
    np.testing.assert_allclose(V[:, :, :cells], reference_inputs(x[n:n + m], th, tw),
                               rtol=1e-5, atol=1e-4)
    assert np.isnan(V[:, :, cells:]).all()

    dV = rng.standard_normal(V.shape).astype(np.float32)
    dx = np.full_like(x, np.nan)
    input_tiles_adjoint(dV, dx, n, m, *workspaces(th, tw, m), th, tw)
    assert np.isnan(dx[:n]).all() and np.isnan(dx[n + m:]).all()
    inner = np.vdot(reference_inputs(x[n:n + m], th, tw), dV[:, :, :cells].astype(np.float64))
    assert np.vdot(x[n:n + m].astype(np.float64), dx[n:n + m]) == \
        pytest.approx(inner, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("h, w", MAPS)
def test_output_tiles_and_adjoint(h, w):
    rng = np.random.default_rng(h * 10 + w)
    (th, tw), m, out_c = tiles(h, w), 3, 2
    M = rng.standard_normal((XI, out_c, m * th * tw)).astype(np.float32)
    b = rng.standard_normal(out_c).astype(np.float32)
    out = np.full((m + 1, out_c, h, w), np.nan, np.float32)   # the stack: its first m samples
    output_tiles(M, m, out, b, True, th, tw, *workspaces(th, tw, m), 0, out.shape[1])
    np.testing.assert_allclose(out[:m], reference_outputs(M, b, m, h, w, th, tw), rtol=1e-5,
                               atol=1e-4)
    assert np.isnan(out[m:]).all()

    grad = rng.standard_normal((m, out_c, h, w)).astype(np.float32)
    dM = np.full_like(M, np.nan)
    output_tiles_adjoint(grad, m, dM, th, tw, *workspaces(th, tw, m))
    inner = np.vdot(reference_outputs(M, 0 * b, m, h, w, th, tw), grad.astype(np.float64))
    assert np.vdot(M.astype(np.float64), dM) == pytest.approx(inner, rel=1e-4, abs=1e-4)


def test_filter_tiles_and_adjoint():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    U = np.empty((XI, 5, 3), np.float32)
    filter_tiles(0, 1, w, U)
    reference = np.einsum("ab,ocbd,ed->aeoc", G, w, G).reshape(XI, 5, 3)
    np.testing.assert_allclose(U, reference, atol=1e-6)

    parts = rng.standard_normal((2, XI, 5, 3)).astype(np.float32)
    dw = np.empty_like(w)
    filter_tiles_adjoint(0, 1, parts, dw)
    inner = np.vdot(reference, parts.sum(0).astype(np.float64))
    assert np.vdot(w.astype(np.float64), dw) == pytest.approx(inner, rel=1e-4, abs=1e-4)
