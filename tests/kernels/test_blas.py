import numpy as np
import pytest

from cnngraph.kernels.cpu.blas import call_gemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_gemm_on_submatrices_with_beta(dtype, trans_a, trans_b):
    rng = np.random.default_rng(0)
    m, n, k = 5, 3, 7
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n + 4)).astype(dtype)   # C is the left part of a wider buffer
    expected = c.copy()
    expected[:, :n] = 2.0 * (a.T if trans_a else a) @ (b.T if trans_b else b) + 0.5 * c[:, :n]
    call_gemm(trans_a, trans_b, m, n, k, 2.0, a, a.shape[1], b, b.shape[1], 0.5, c, n + 4)
    np.testing.assert_allclose(c, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
