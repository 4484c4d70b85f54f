"""maxpool, avgpool, global_maxpool and global_avgpool: their cases against PyTorch on the CPU
(float64, with finite differences, and float32) and in the CUDA backend; avgpool's windows that
tile the input; and the shape and cost rules against PyTorch's."""
import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from cnngraph.ops.base import Case, ShapeError
from cnngraph.ops.pooling.cases import CASES
from cnngraph.ops.pooling.cpu import maxpool_fwd_cpu
from cnngraph.tools.torch_reference import reference

from helpers import DTYPES, TOLERANCE, apply, check_op, full_ops, over, shape_as_torch

F = torch.nn.functional


@DTYPES
@over(CASES)
def test_pooling(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over([replace(case, input=(2, 7, 8)) for case in CASES])
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@DTYPES
@pytest.mark.parametrize("layer", ["avgpool: {kernel: 2}", "avgpool: {kernel: [2, 3]}"])
def test_pooling_windows_that_tile_the_input(tmp_path, layer, dtype):
    """Windows covering every pixel once: avgpool's backward writes each input gradient row
    once instead of zeroing it and summing into it, so a pixel it missed would hold a stale
    value. Two steps with different inputs: the second's gradients must be its own."""
    model = check_op(tmp_path, Case(f"- {layer}", (3, 8, 6)), dtype=dtype)
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((3, 3, 8, 6)), rng.integers(0, 4, 3)
    model.loss_and_grad(x, labels, input_grad=True)
    np.testing.assert_allclose(model.input_grad, reference(model, x, labels)["input_grad"],
                               **TOLERANCE[dtype])


@pytest.mark.parametrize("kernel, stride, padding, ceil, size", [
    (3, 1, 1, False, (21, 37)), (3, 2, 1, False, (21, 37)), (3, 2, 0, True, (21, 37)),
    (2, 2, 0, False, (21, 37)), ((3, 2), 1, 0, False, (21, 37)),
    ((2, 3), (1, 2), (1, 1), True, (21, 37)), (3, 1, 1, False, (2, 2)),
    (3, 1, 1, False, (1, 1)), (3, 2, 1, False, (1, 2)), (5, 1, 2, False, (9, 11)),
    ((3, 5), 1, (1, 2), False, (21, 37))])
def test_maxpool_ties_and_nan_as_pytorch(kernel, stride, padding, ceil, size):
    """The CPU kernel's maxima and their indices on maps full of ties and with NaNs, wide
    enough for the row passes' SIMD lanes and their remainders, and smaller than a window: the
    first maximum in scan order wins a tie, and a NaN wins its window, as in PyTorch."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (2, 3, *size)).astype(np.float32)
    x[rng.random(x.shape) < 0.01] = np.nan
    expected, indices = F.max_pool2d(torch.from_numpy(x), kernel, stride, padding,
                                     ceil_mode=ceil, return_indices=True)
    y, argmax = np.empty(expected.shape, np.float32), np.empty(expected.shape, np.int32)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    maxpool_fwd_cpu(x, y, argmax, *pair(kernel), *pair(stride), *pair(padding))
    np.testing.assert_array_equal(y, expected.numpy())
    np.testing.assert_array_equal(argmax, indices.numpy())


@pytest.mark.parametrize("n, k, s, p, ceil", list(itertools.product(
    [4, 5, 7, 112, 113], [1, 2, 3], [1, 2, 3], [0, 1], [False, True])))
def test_pool_shapes_match_pytorch(n, k, s, p, ceil):
    if p > k // 2:
        with pytest.raises(ShapeError, match="more than half the kernel"):
            apply("maxpool", {"kernel": k, "stride": s, "padding": p}, (3, n, n))
        return
    x = torch.empty(1, 3, n, n)
    for name, fn in (("maxpool", F.max_pool2d), ("avgpool", F.avg_pool2d)):
        expected = tuple(fn(x, k, s, p, ceil_mode=ceil).shape[1:])
        args = {"kernel": k, "stride": s, "padding": p, "ceil_mode": ceil}
        assert apply(name, args, (3, n, n))[2] == expected


@pytest.mark.parametrize("name, module", [
    ("global_avgpool", lambda: torch.nn.AdaptiveAvgPool2d(1)),
    ("global_maxpool", lambda: torch.nn.AdaptiveMaxPool2d(1))])
def test_global_pooling_shape_matches_pytorch(name, module):
    assert shape_as_torch(name, module(), (5, 7, 3))


@pytest.mark.parametrize("name, args, in_shape, ops", [
    ("maxpool", {"kernel": 2}, (1, 4, 4), 4 * 3), ("avgpool", {"kernel": 2}, (1, 4, 4), 4 * 4),
    ("global_avgpool", {}, (2, 3, 3), 18), ("global_maxpool", {}, (2, 3, 3), 16)])
def test_full_policy_op_counts(name, args, in_shape, ops):
    assert full_ops(name, args, in_shape) == ops
