"""im2col and col2im from padded planes, against a NumPy reference and as each other's adjoint.
(Every conv case in tests/ops/test_conv.py also runs through them.)"""
import numpy as np
import pytest
from numba import njit

from cnngraph.kernels.cpu.im2col import col2im, crop, im2col, pad, pixel_offsets

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
