"""channel_shuffle: its cases against PyTorch on the CPU (float64, with finite differences, and
float32) and in the CUDA backend; the shape and cost rules; a groups value that does not
divide the channels, as a located error of `cnngraph check`."""
import pytest
import torch

from cnngraph.ops.base import ShapeError
from cnngraph.ops.channel_shuffle.cases import CASES

from helpers import DTYPES, apply, assert_located_error, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_channel_shuffle(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_shape_matches_pytorch():
    module = torch.nn.ChannelShuffle(3)
    assert apply("channel_shuffle", {"groups": 3}, (6, 5, 7))[2] \
        == tuple(module(torch.zeros(1, 6, 5, 7)).shape[1:])


def test_groups_must_divide_the_channels():
    with pytest.raises(ShapeError, match="groups=4 does not divide the 6 input channels") as e:
        apply("channel_shuffle", {"groups": 4}, (6, 5, 7))
    assert "1, 2, 3, 6" in e.value.hint


def test_needs_a_map():
    with pytest.raises(ShapeError, match=r"expected an input of shape \(C, H, W\)"):
        apply("channel_shuffle", {"groups": 2}, (6,))


def test_full_policy_op_count():
    assert full_ops("channel_shuffle", {"groups": 2}, (6, 5, 7)) == 0


@pytest.mark.parametrize("groups, message, hint", [
    ("4", "groups=4 does not divide the 6 input channels", "1, 2, 3, 6"),
    ("0", "expected an integer >= 1, received 0", None),
])
def test_check_prints_a_located_error(cli, write_spec, groups, message, hint):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - channel_shuffle: {{groups: {groups}}}\n  - flatten\n")
    assert_located_error(cli("check", path), path, 5, message, hint)
