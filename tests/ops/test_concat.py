"""concat: its cases (maps, vectors) against PyTorch on the CPU (float64, with finite
differences, and float32) and in the CUDA backend (and label smoothing there); and the
shape rule."""
import pytest

from cnngraph.ops.base import ShapeError
from cnngraph.ops.concat.cases import CASES

from helpers import DTYPES, apply, check_op, over

MAPS, VECTORS, *FOLDED = CASES


@DTYPES
@over(CASES)
def test_concat(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_cuda_label_smoothing(tmp_path):
    check_op(tmp_path, VECTORS, "cuda", smoothing=0.1)


def test_shape_rule():
    assert apply("concat", {}, (4, 3, 3), (2, 3, 3))[2] == (6, 3, 3)
    assert apply("concat", {}, (4,), (2,))[2] == (6,)
    with pytest.raises(ShapeError):
        apply("concat", {}, (4, 3, 3), (4,))
