"""im2col and col2im from padded planes, and flat columns read from a sample's stride phases,
against a NumPy reference; col2im as im2col's adjoint, gather as spread's inverse. (Every conv
case in tests/ops/test_conv.py also runs through them.)"""
from types import SimpleNamespace

import numpy as np
import pytest
from numba import njit

from cnngraph.kernels.cpu.im2col import (
    col2im,
    crop,
    flat_offsets,
    gather,
    im2col,
    pad,
    pixel_offsets,
    spread,
)
from cnngraph.ops.conv.geometry import flat_size

GEOMETRIES = [  # kernel, stride, padding (top, bottom, left, right), dilation
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((3, 2), (2, 1), (2, 0, 1, 3), (1, 1)),
    ((2, 3), (1, 2), (0, 1, 0, 0), (2, 1)),
    ((1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),
]


def reference_columns(x, kernel, stride, padding, dilation):
    (kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw) = kernel, stride, padding, dilation
    padded = np.pad(x, ((0, 0), (pt, pb), (pl, pr)))
    oh = (padded.shape[1] - dh * (kh - 1) - 1) // sh + 1
    ow = (padded.shape[2] - dw * (kw - 1) - 1) // sw + 1
    rows = [padded[c, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            .reshape(-1) for c in range(x.shape[0]) for i in range(kh) for j in range(kw)]
    return np.stack(rows), oh, ow


@njit
def _columns(x, padded, offsets, col, at, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, wp):
    padded[:] = 0
    pad(x, padded, pt, pl, wp)
    pixel_offsets(offsets, oh, ow, sh, sw, wp)
    im2col(padded, offsets, col, at, kh, kw, dh, dw, wp)


@njit
def _back(col, at, padded, offsets, x, kh, kw, pt, pl, dh, dw, wp):
    col2im(col, at, padded, offsets, kh, kw, dh, dw, wp)
    crop(padded, x, pt, pl, wp)


@pytest.mark.parametrize("kernel, stride, padding, dilation", GEOMETRIES)
def test_columns_match_numpy_and_col2im_is_the_adjoint(kernel, stride, padding, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6))
    expected, oh, ow = reference_columns(x, kernel, stride, padding, dilation)
    (kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw) = kernel, stride, padding, dilation
    wp = x.shape[2] + pl + pr
    padded = np.full((2, (x.shape[1] + pt + pb) * wp), np.nan)   # stale values must not leak
    offsets = np.empty(oh * ow, np.int32)
    at = 3        # the sample's columns start after another sample's
    col = np.full((expected.shape[0], at + oh * ow + 2), np.nan)
    _columns(x, padded, offsets, col, at, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, wp)
    np.testing.assert_array_equal(col[:, at:at + oh * ow], expected)
    assert np.isnan(col[:, :at]).all() and np.isnan(col[:, at + oh * ow:]).all()

    grads = rng.standard_normal(expected.shape)
    col[:, at:at + oh * ow] = grads
    dx = np.full_like(x, np.nan)
    padded[:] = np.nan
    _back(col, at, padded, offsets, dx, kh, kw, pt, pl, dh, dw, wp)
    np.testing.assert_allclose(np.sum(dx * x), np.sum(grads * expected), rtol=1e-12)


@njit
def _flat_columns(x, flat, offsets, kh, kw, sh, sw, pt, pl, dh, dw, wp):
    spread(x, flat, pt, pl, sh, sw, wp)
    flat_offsets(offsets, kh, kw, sh, sw, dh, dw, wp, flat.shape[1])


@njit
def _gather(flat, x, pt, pl, sh, sw, wp):
    gather(flat, x, pt, pl, sh, sw, wp)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    *GEOMETRIES, ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1)), ((5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    ((3, 3), (3, 2), (2, 1, 1, 2), (2, 3))])
def test_flat_columns_are_slices_of_the_phases_at_their_offsets(kernel, stride, padding,
                                                                 dilation):
    """Column row (c, ky, kx) is `length` values of the phases from offsets[row], of which
    the first ow of every wp are its output pixels' taps; gather takes the sample back."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 7, 8))
    expected, oh, ow = reference_columns(x, kernel, stride, padding, dilation)
    (kh, kw), (sh, sw), (pt, _, pl, _), (dh, dw) = kernel, stride, padding, dilation
    a = SimpleNamespace(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    rows, wp, length = flat_size(x.shape[1:], (oh, ow), a)
    flat = np.zeros((x.shape[0] * sh * sw, rows * wp))
    offsets = np.full(expected.shape[0], -1, np.int32)
    _flat_columns(x, flat, offsets, kh, kw, sh, sw, pt, pl, dh, dw, wp)
    phases = flat.reshape(-1)
    columns = np.stack([phases[o:o + length] for o in offsets])
    kept = (np.arange(length) % wp) < ow
    np.testing.assert_array_equal(columns[:, kept], expected)

    back = np.full_like(x, np.nan)
    _gather(flat, back, pt, pl, sh, sw, wp)
    np.testing.assert_array_equal(back, x)
