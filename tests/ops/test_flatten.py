"""flatten: its cases against PyTorch on the CPU (float64, with finite differences, and
float32) and in the CUDA backend; and the shape and cost rules."""
import pytest
import torch

from cnngraph.ops.flatten.cases import CASES

from helpers import DTYPES, check_op, full_ops, over, shape_as_torch


@DTYPES
@over(CASES)
def test_flatten(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@pytest.mark.parametrize("in_shape", [(5, 7, 3), (12,)])
def test_shape_matches_pytorch(in_shape):
    assert shape_as_torch("flatten", torch.nn.Flatten(), in_shape)


def test_full_policy_op_count():
    assert full_ops("flatten", {}, (2, 2, 2)) == 0
