"""direct_tile and direct_sums, the register-tiled micro-kernels of direct convolutions: their
products against NumPy's for every tile shape (and several tiles), lengths below, at and past a
tile's width, offsets into a group's taps and rows, row-strided views; nothing written outside
its rows and length; and the float32 kernels are FMA vector code (the reason they exist)."""
import re

import numpy as np
import pytest
from numba import njit

from cnngraph.kernels.cpu.direct import (
    ROWS,
    SUM_ROWS,
    SUM_TAPS,
    VECTORS,
    direct_sums,
    direct_tile,
    fold_lanes,
    lanes,
)
from cnngraph.ops.conv.lower import LANES


@njit(cache=True)
def _direct(out, w, o0, rows, src, offsets, tap0, length):
    direct_tile(out, w, o0, rows, src, offsets, tap0, length)


@njit(cache=True)
def _sums(sums, dy, src, offsets, length, out):
    direct_sums(sums, dy, src, offsets, length)
    fold_lanes(sums, out)


@njit   # not cached: cached code cannot be inspected
def _inspected_sums(sums, dy, src, offsets, length):
    direct_sums(sums, dy, src, offsets, length)


@njit   # not cached: cached code cannot be inspected
def _inspected(out, w, o0, rows, src, offsets, tap0, length):
    direct_tile(out, w, o0, rows, src, offsets, tap0, length)


def _case(dtype, out_c, taps, length, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.standard_normal(taps * 7 + length + 3).astype(dtype)
    offsets = rng.permutation(taps * 7 + 3)[:2 * taps].astype(np.int32)   # two groups' taps
    w = rng.standard_normal((out_c, taps)).astype(dtype)
    return src, offsets, w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out_c, o0, rows", [
    (1, 0, 1), (2, 0, 2), (3, 1, 2), (4, 0, 4), (5, 0, 5), (6, 0, 6), (9, 2, 7), (16, 0, 16),
    (20, 3, 13)])
@pytest.mark.parametrize("length", [1, 7, 8, 15, 16, 17, 40, 136])
def test_direct_tile_matches_numpy(dtype, out_c, o0, rows, length):
    taps = 11
    src, offsets, w = _case(dtype, out_c, taps, length, seed=rows * 1000 + length)
    tap0 = taps          # the second group's taps
    out = np.full((out_c, length + 5), np.nan, dtype)
    _direct(out, w, o0, rows, src, offsets, tap0, length)
    slices = np.stack([src[at:at + length] for at in offsets[tap0:tap0 + taps]])
    expected = w[o0:o0 + rows].astype(np.float64) @ slices.astype(np.float64)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out[o0:o0 + rows, :length], expected, rtol=tolerance,
                               atol=tolerance)
    untouched = np.ones(out.shape, bool)
    untouched[o0:o0 + rows, :length] = False
    assert np.isnan(out[untouched]).all()


def test_direct_tile_reads_a_value_only_into_the_positions_that_take_it():
    src, offsets, w = _case(np.float32, 6, 5, 40)
    poisoned = offsets[5] + 3               # tap 0 of the second group, at position 3
    src[poisoned] = np.nan
    out = np.zeros((6, 40), np.float32)
    _direct(out, w, 0, 6, src, offsets, 5, 40)
    reached = {poisoned - at for at in offsets[5:10] if 0 <= poisoned - at < 40}
    assert 3 in reached
    assert sorted(np.flatnonzero(np.isnan(out).any(axis=0))) == sorted(reached)
    assert np.isnan(out[:, sorted(reached)]).all()


def test_the_float32_tile_is_fma_vector_code():
    src, offsets, w = _case(np.float32, ROWS, 9, 64)
    out = np.zeros((ROWS, 64), np.float32)
    _inspected(out, w, 0, ROWS, src, offsets, 0, 64)
    asm = next(iter(_inspected.inspect_asm().values()))
    # ROWS x VECTORS accumulators of 8 lanes (ymm registers) updated by fused multiply-adds
    assert len(re.findall(r"vfmadd\w+ps\s+[^\n]*ymm", asm)) >= ROWS * VECTORS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("taps, outs", [(1, 1), (2, 3), (SUM_TAPS, SUM_ROWS), (4, 5), (25, 6),
                                        (7, 16)])
@pytest.mark.parametrize("length", [1, 7, 8, 9, 24, 61])
def test_direct_sums_matches_numpy_and_adds_to_what_is_there(dtype, taps, outs, length):
    rng = np.random.default_rng(taps * 100 + length)
    src = rng.standard_normal(taps * 5 + length).astype(dtype)
    offsets = rng.permutation(taps * 5)[:taps].astype(np.int32)
    wide = rng.standard_normal((outs * 2, length + 3)).astype(dtype)
    dy = wide[::2, :length]               # rows two rows apart
    sums = rng.standard_normal((taps, outs, lanes(np.float32))).astype(dtype)  # room for both
    out = rng.standard_normal((taps, outs)).astype(dtype)
    expected = out + sums.sum(axis=2) + np.stack(
        [src[at:at + length] for at in offsets]).astype(np.float64) @ dy.T.astype(np.float64)
    _sums(sums, dy, src, offsets, length, out)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance)


def test_direct_sums_is_fma_vector_code():
    taps, outs, length = SUM_TAPS, SUM_ROWS, 64
    rng = np.random.default_rng(0)
    src = rng.standard_normal(taps + length).astype(np.float32)
    dy = rng.standard_normal((outs, length)).astype(np.float32)
    sums = np.zeros((taps, outs, 8), np.float32)
    _inspected_sums(sums, dy, src, np.arange(taps, dtype=np.int32), length)
    asm = next(iter(_inspected_sums.inspect_asm().values()))
    assert len(re.findall(r"vfmadd\w+ps\s+[^\n]*ymm", asm)) >= SUM_TAPS * SUM_ROWS


def test_the_flat_convs_workspace_holds_the_kernels_vectors():
    assert LANES == lanes(np.float32) >= lanes(np.float64)
