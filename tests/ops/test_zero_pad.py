"""zero_pad: its cases against PyTorch on the CPU (float64, with finite differences, and
float32) and in the CUDA backend; the shape rule against `nn.ZeroPad2d`; bad paddings as
located errors of `cnngraph check`."""
import pytest
import torch

from cnngraph.ops.base import ShapeError
from cnngraph.ops.zero_pad.cases import CASES

from helpers import DTYPES, apply, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_zero_pad(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@pytest.mark.parametrize("padding, torch_padding", [
    (1, 1), ([2, 1], (1, 1, 2, 2)), ([0, 2, 3, 1], (3, 1, 0, 2))])
def test_shape_matches_pytorch(padding, torch_padding):
    module = torch.nn.ZeroPad2d(torch_padding)
    assert apply("zero_pad", {"padding": padding}, (2, 4, 5))[2] \
        == tuple(module(torch.zeros(1, 2, 4, 5)).shape[1:])


def test_needs_a_map():
    with pytest.raises(ShapeError, match=r"expected an input of shape \(C, H, W\)"):
        apply("zero_pad", {"padding": 1}, (6,))


def test_costs_nothing():
    assert full_ops("zero_pad", {"padding": 2}, (2, 3, 5)) == 0


@pytest.mark.parametrize("padding, message", [
    ("-1", "received -1"), ("[1, 2, 3]", "received [1, 2, 3]"), ("same", "received 'same'")])
def test_check_prints_a_located_error(cli, write_spec, padding, message):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - zero_pad: {{padding: {padding}}}\n  - flatten\n")
    result = cli("check", path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert any(line.startswith(f"{path}:5:") and ": error: " in line and message in line
               for line in result.stderr.splitlines()), result.stderr
