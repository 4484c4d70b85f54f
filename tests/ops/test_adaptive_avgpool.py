"""adaptive_avgpool: its cases against PyTorch on the CPU (float64, with finite differences,
and float32) and in the CUDA backend; the shape rule against `nn.AdaptiveAvgPool2d`, the cost
and receptive-field rules; bad inputs and arguments as errors of `cnngraph check`."""
import itertools
from fractions import Fraction

import pytest
import torch

import cnngraph
from cnngraph.ops.adaptive_avgpool.cases import CASES
from cnngraph.ops.base import GLOBAL, ShapeError, Window

from helpers import DTYPES, apply, assert_located_error, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_adaptive_avgpool(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@pytest.mark.parametrize("out, in_shape", list(itertools.product(
    [1, 3, [2, 5], [7, 1]], [(2, 1, 1), (3, 5, 7), (1, 9, 6)])))
def test_shape_matches_pytorch(out, in_shape):
    expected = torch.nn.AdaptiveAvgPool2d(out)(torch.zeros(1, *in_shape))
    assert apply("adaptive_avgpool", {"out": out}, in_shape)[2] == tuple(expected.shape[1:])


def test_needs_a_map():
    with pytest.raises(ShapeError, match=r"expected an input of shape \(C, H, W\)") as e:
        apply("adaptive_avgpool", {"out": 2}, (6,))
    assert "move the op before `flatten`" in e.value.hint


@pytest.mark.parametrize("out, in_shape, ops", [
    (2, (3, 8, 6), 3 * 8 * 6),                  # tiles: each input in one window
    ([3, 2], (1, 7, 5), (3 + 3 + 3) * (3 + 3)),  # windows [0,3) [2,5) [4,7); [0,3) [2,5)
    ([5, 1], (2, 3, 4), 2 * (1 + 2 + 1 + 2 + 1) * 4),  # 3 -> 5 overlaps: [0,1) [0,2) ...
    (1, (4, 5, 7), 4 * 5 * 7),                  # as global_avgpool
])
def test_full_policy_op_count(out, in_shape, ops):
    assert full_ops("adaptive_avgpool", {"out": out}, in_shape) == ops


@pytest.mark.parametrize("out, in_shape, window", [
    (1, (2, 5, 7), GLOBAL),
    (2, (2, 8, 6), Window((4, 3), (Fraction(4), Fraction(3)))),
    ([3, 7], (2, 7, 7), Window((3, 1), (Fraction(7, 3), Fraction(1)))),
    ([5, 1], (2, 3, 4), Window((2, 4), (Fraction(3, 5), Fraction(4)))),
])
def test_window_is_the_largest_and_the_mean_stride(out, in_shape, window):
    op, attrs, _ = apply("adaptive_avgpool", {"out": out}, in_shape)
    assert op.window(attrs, [in_shape]) == window


@pytest.mark.parametrize("size, layer, field, jump", [
    (8, "adaptive_avgpool: {out: 3}", 4, 2),        # 6 -> 3: a 2x2 pool of stride 2
    (9, "adaptive_avgpool: {out: 3}", 5, Fraction(7, 3)),  # 7 -> 3: windows of 3, 3, 3
    (9, "adaptive_avgpool: {out: 7}", 3, 1),        # out = in: each output its own input
    (9, "adaptive_avgpool: {out: 1}", 9, 7),        # global, as global_avgpool
    (9, "global_avgpool", 9, 7),
])
def test_receptive_field(write_spec, size, layer, field, jump):
    """After a 3x3 conv (field 3, jump 1) on a size x size input."""
    net = cnngraph.load(write_spec(f"version: 1\ninput: [1, {size}, {size}]\nlayers:\n"
                                   f"  - conv: {{out: 2, kernel: 3}}\n  - {layer}\n"))
    node = net.node(net.output)
    assert node.receptive_field == (field, field) and node.jump == (jump, jump)


def test_check_prints_a_located_error_for_a_vector(cli, write_spec):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - flatten\n"
                      "  - adaptive_avgpool: {out: 2}\n")
    assert_located_error(cli("check", path), path, 5,
                         "`adaptive_avgpool` expected an input of shape (C, H, W), received "
                         "(192,)", "move the op before `flatten`")


@pytest.mark.parametrize("args, message, hint", [
    ("{out: 0}", "received 0", None),
    ("{out: [2, 0]}", "received [2, 0]", None),
    ("{out: big}", "received 'big'", None),
    ("{out: 2.5}", "received 2.5", None),
    ("{out: [1, 2, 3]}", "received [1, 2, 3]", None),
    ("{}", "`out`", None),
    ("{out: 2, size: 2}", "unknown key `size` of `adaptive_avgpool`", "allowed keys: `out`"),
])
def test_check_prints_a_located_error(cli, write_spec, args, message, hint):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - adaptive_avgpool: {args}\n  - flatten\n")
    assert_located_error(cli("check", path), path, 5, message, hint)
