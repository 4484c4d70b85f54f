"""softmax: its cases (maps and vectors) against PyTorch on the CPU (float64, with finite
differences, and float32) and in the CUDA backend (float32 on maps, float64 on vectors); and
the shape and cost rules."""
from dataclasses import replace

import torch

from cnngraph.ops.softmax.cases import CASES

from helpers import DTYPES, check_op, full_ops, over, shape_as_torch


@DTYPES
@over(CASES)
def test_softmax(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over([replace(case, input=(2, 3, 5)) if len(case.input) == 3 else case for case in CASES])
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda", "float32" if len(case.input) == 3 else "float64")


def test_shape_matches_pytorch():
    assert shape_as_torch("softmax", torch.nn.Softmax(dim=1), (5, 7, 3))


def test_full_policy_op_count():
    assert full_ops("softmax", {}, (10,)) == 50
