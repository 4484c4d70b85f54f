"""lrn: its cases against PyTorch on the CPU (float64, with finite differences, and float32)
and in the CUDA backend; and the shape and cost rules."""
import torch

from cnngraph.ops.lrn.cases import CASES

from helpers import DTYPES, check_op, full_ops, over, shape_as_torch


@DTYPES
@over(CASES)
def test_lrn(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_shape_matches_pytorch():
    assert shape_as_torch("lrn", torch.nn.LocalResponseNorm(5), (6, 4, 4))


def test_full_policy_op_count():
    assert full_ops("lrn", {"size": 3}, (4, 1, 1)) == 4 * 7
