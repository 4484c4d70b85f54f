"""The exact reduction's fixed-point sums (cnngraph/kernels/cpu/exact.py): the same bits in any
grouping of the shards, close to the float64 sum, and NaN where a value is not finite."""
import numpy as np

from cnngraph.kernels.cpu import exact


def _sum(grads, groups, offsets, shards):
    """The exact sum of `grads`' rows, each group of rows summed apart (as a worker does) and
    the groups' integer totals added (as the allreduce does)."""
    largest = np.max([exact.largest(grads, np.asarray(g, np.int64), offsets) for g in groups],
                     axis=0)
    scale = exact.scales(largest, shards)
    totals = sum(exact.to_fixed(grads, np.asarray(g, np.int64), offsets, scale) for g in groups)
    out = np.empty(grads.shape[1], grads.dtype)
    exact.from_fixed(totals, offsets, scale, out)
    return out


def test_any_grouping_of_the_shards_gives_the_same_bits():
    rng = np.random.default_rng(0)
    # three tensors of very different magnitudes, one all zeros
    grads = np.concatenate([rng.standard_normal((8, 300)) * 1e-3,
                            rng.standard_normal((8, 50)) * 1e4,
                            np.zeros((8, 7))], axis=1).astype(np.float32)
    offsets = np.array([0, 300, 350, 357])
    whole = _sum(grads, [range(8)], offsets, 8)
    for groups in ([range(4), range(4, 8)], [[0, 1], [2, 3], [4, 5], [6, 7]],
                   [[7, 3, 1], [0, 2, 4, 5, 6]]):
        assert np.array_equal(_sum(grads, groups, offsets, 8), whole)
    float_sums = grads[:4].sum(axis=0) + grads[4:].sum(axis=0)
    assert not np.array_equal(float_sums, grads.sum(axis=0))   # (floats do depend on it)
    np.testing.assert_allclose(whole, grads.astype(np.float64).sum(axis=0), rtol=1e-6,
                               atol=1e-12)
    assert not whole[350:].any()


def test_a_value_that_is_not_finite_makes_its_tensor_nan():
    grads = np.ones((2, 6), np.float32)
    grads[1, 4] = np.inf
    out = _sum(grads, [[0], [1]], np.array([0, 3, 6]), 2)
    assert np.array_equal(out[:3], [2, 2, 2]) and np.isnan(out[3:]).all()
