"""add: its cases (a residual merge, fan-out) against PyTorch on the CPU (float64, with finite
differences, and float32) and in the CUDA backend; and the shape rule."""
import pytest

from cnngraph.ops.add.cases import CASES
from cnngraph.ops.base import ShapeError

from helpers import DTYPES, apply, check_op, over


@DTYPES
@over(CASES)
def test_add(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_shape_rule():
    assert apply("add", {}, (4, 3, 3), (4, 3, 3), (4, 3, 3))[2] == (4, 3, 3)
    with pytest.raises(ShapeError):
        apply("add", {}, (4, 3, 3), (4, 3, 2))
