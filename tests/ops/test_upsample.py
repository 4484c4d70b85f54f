"""upsample: its cases against PyTorch on the CPU (float64, with finite differences, and
float32) and in the CUDA backend; the shape rule against PyTorch's, the cost and receptive
field rules, and located errors of `cnngraph check`."""
import itertools
from fractions import Fraction

import pytest
import torch

import cnngraph
from cnngraph.ops.base import ShapeError
from cnngraph.ops.upsample.cases import CASES

from helpers import DTYPES, apply, assert_located_error, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_upsample(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@pytest.mark.parametrize("scale, mode, in_shape", list(itertools.product(
    [1, 2, 3], ["nearest", "bilinear"], [(2, 1, 1), (3, 5, 7)])))
def test_shape_matches_pytorch(scale, mode, in_shape):
    expected = torch.nn.Upsample(scale_factor=scale, mode=mode)(torch.zeros(1, *in_shape))
    args = {"scale": scale, "mode": mode}
    assert apply("upsample", args, in_shape)[2] == tuple(expected.shape[1:])


def test_defaults_are_nearest_by_two():
    _, attrs, shape = apply("upsample", {}, (3, 5, 7))
    assert (attrs.scale, attrs.mode, shape) == (2, "nearest", (3, 10, 14))


def test_needs_a_map():
    with pytest.raises(ShapeError, match=r"expected an input of shape \(C, H, W\)"):
        apply("upsample", {}, (6,))


def test_full_policy_op_counts():
    assert full_ops("upsample", {"scale": 3}, (2, 3, 5)) == 0
    assert full_ops("upsample", {"mode": "bilinear"}, (2, 3, 5)) == 7 * 2 * 6 * 10


@pytest.mark.parametrize("layer, field", [
    ("upsample", 3), ("upsample: {mode: bilinear}", 4),
    ("upsample: {scale: 1, mode: bilinear}", 3)])
def test_receptive_field(write_spec, layer, field):
    """Bilinear outputs blend two neighbouring inputs: one input step more."""
    net = cnngraph.load(write_spec("version: 1\ninput: [1, 8, 8]\nlayers:\n"
                                   f"  - conv: {{out: 2, kernel: 3}}\n  - {layer}\n"))
    assert net.node(net.output).receptive_field == (field, field)


def test_jump_divides_by_the_scale(write_spec):
    """After an upsample by 3, one output pixel is a third of an input pixel: a 3x3 conv there
    adds 2/3 of a pixel to the field; a stride-3 conv brings the jump back to whole pixels."""
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [1, 8, 8]\nlayers:\n  - upsample: {scale: 3}\n"
        "  - conv: {out: 2, kernel: 3, padding: 1}\n  - conv: {out: 2, kernel: 3, stride: 3}\n"))
    upsample, conv1, conv2 = net.nodes
    assert upsample.jump == (Fraction(1, 3),) * 2 and upsample.receptive_field == (1, 1)
    assert conv1.receptive_field == (Fraction(5, 3),) * 2
    assert conv2.jump == (1, 1) and type(conv2.jump[0]) is int
    assert conv2.receptive_field == (Fraction(7, 3),) * 2


@pytest.mark.parametrize("args, message, hint", [
    ("{scale: 0}", "expected an integer factor >= 1 (the output is whole pixels), received 0",
     None),
    ("{scale: 1.5}", "expected an integer factor >= 1", "1.5 is not a whole number"),
    ("{mode: cubic}", "expected one of `nearest`, `bilinear`, received 'cubic'", None),
    ("{factor: 2}", "unknown key `factor` of `upsample`", "allowed keys: `mode`, `scale`"),
])
def test_check_prints_a_located_error(cli, write_spec, args, message, hint):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - upsample: {args}\n  - flatten\n")
    assert_located_error(cli("check", path), path, 5, message, hint)
