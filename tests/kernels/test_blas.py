"""`gemm` from njit code: every transpose, sub-matrices of wider buffers (leading dimensions),
alpha and beta, in both dtypes, on both of its paths: OpenBLAS, and the loops that products of
at most SMALL_ROWS rows take (`small_gemm`)."""
import numpy as np
import pytest

from cnngraph.kernels.cpu.blas import SMALL_ROWS, call_gemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
@pytest.mark.parametrize("m, n, k", [(1, 3, 7), (SMALL_ROWS, 33, 17), (SMALL_ROWS + 1, 3, 7),
                                     (40, 50, 60)], ids=["one row", "loops", "openblas", "big"])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_gemm_on_submatrices_with_beta(dtype, trans_a, trans_b, m, n, k, beta):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    # A and B are the left parts of wider buffers too, C of one with NaN around (beta 0: C's
    # old values are not read, not even as 0 * NaN)
    wide_a = np.full((a.shape[0], a.shape[1] + 3), np.nan, dtype)
    wide_a[:, :a.shape[1]] = a
    wide_b = np.full((b.shape[0], b.shape[1] + 2), np.nan, dtype)
    wide_b[:, :b.shape[1]] = b
    c = rng.standard_normal((m, n + 4)).astype(dtype)
    if beta == 0:
        c[:, :n] = np.nan
    expected = c.copy()
    expected[:, :n] = 2.0 * (a.T if trans_a else a) @ (b.T if trans_b else b) \
        + (beta * c[:, :n] if beta else 0)
    call_gemm(trans_a, trans_b, m, n, k, 2.0, wide_a, wide_a.shape[1], wide_b, wide_b.shape[1],
              beta, c, n + 4)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12     # sums of up to 60 products
    np.testing.assert_allclose(c, expected, rtol=tolerance, atol=tolerance)
