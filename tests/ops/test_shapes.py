"""Each op's shape, parameter and cost rules against what PyTorch actually does."""
import itertools
import warnings

import pytest
import torch

from cnngraph.ops import REGISTRY
from cnngraph.ops.base import ShapeError, numel
from cnngraph.ops.window import out_size, same_padding

F = torch.nn.functional


def apply(name, args, *in_shapes):
    op = REGISTRY[name]
    attrs = op.resolve(op.attrs(args), list(in_shapes))
    return op, attrs, op.shape(attrs, list(in_shapes))


CONV_GRID = list(itertools.product(
    [1, 7, 8, 13], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2]))  # n, kernel, stride, pad, dilation


@pytest.mark.parametrize("n, k, s, p, d", CONV_GRID)
def test_conv_shape_matches_pytorch(n, k, s, p, d):
    x = torch.empty(1, 4, n, n + 3, device="meta")
    w = torch.empty(6, 2, k, k, device="meta")
    args = {"out": 6, "kernel": k, "stride": s, "padding": p, "dilation": d, "groups": 2}
    try:
        expected = tuple(F.conv2d(x, w, stride=s, padding=p, dilation=d, groups=2).shape[1:])
    except RuntimeError:
        with pytest.raises(ShapeError, match="window does not fit"):
            apply("conv", args, (4, n, n + 3))
        return
    op, attrs, shape = apply("conv", args, (4, n, n + 3))
    assert shape == expected
    assert op.params(attrs, [(4, n, n + 3)]) == {"weight": (6, 2, k, k), "bias": (6,)}
    assert op.cost(attrs, [(4, n, n + 3)], shape).macs == numel(shape) * 2 * k * k


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


@pytest.mark.parametrize("n, k, d", list(itertools.product([5, 6, 9], [1, 2, 3, 4], [1, 2])))
def test_same_padding_matches_pytorch_at_stride_1(n, k, d):
    x = torch.randn(1, 2, n, n + 1, dtype=torch.float64)
    w = torch.randn(3, 2, k, k, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch notes it copies the input for even kernels
        expected = F.conv2d(x, w, padding="same", dilation=d)
    _, attrs, shape = apply("conv", {"out": 3, "kernel": k, "padding": "same", "dilation": d},
                            (2, n, n + 1))
    top, bottom, left, right = attrs.padding
    ours = F.conv2d(F.pad(x, (left, right, top, bottom)), w, dilation=d)
    assert shape == tuple(expected.shape[1:])
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("n, k, s", list(itertools.product([5, 6, 7, 224], [1, 3, 4, 7], [2, 3])))
def test_same_padding_at_stride_gives_ceil(n, k, s):
    lo, hi = same_padding(n, k, s, 1)
    assert hi - lo in (0, 1)
    assert out_size(n, k, s, 1, lo, hi) == -(-n // s)


def test_asymmetric_padding_matches_pytorch():
    x = torch.empty(1, 2, 9, 10, device="meta")
    w = torch.empty(4, 2, 3, 2, device="meta")
    expected = F.conv2d(F.pad(x, (0, 3, 1, 2)), w, stride=(2, 1)).shape[1:]
    args = {"out": 4, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 2, 0, 3]}
    assert apply("conv", args, (2, 9, 10))[2] == tuple(expected)
    assert apply("conv", {"out": 4, "kernel": 3, "padding": [1, 0]}, (2, 9, 10))[1].padding \
        == (1, 1, 0, 0)


def test_depthwise_conv():
    op, attrs, shape = apply("conv", {"out": 32, "kernel": 3, "groups": 32, "padding": 1},
                             (32, 8, 8))
    assert shape == (32, 8, 8)
    assert op.params(attrs, [(32, 8, 8)])["weight"] == (32, 1, 3, 3)
    assert op.cost(attrs, [(32, 8, 8)], shape).macs == 32 * 64 * 9


def test_groups_must_divide_output_channels():
    with pytest.raises(ShapeError, match="does not divide out=6"):
        apply("conv", {"out": 6, "kernel": 1, "groups": 4}, (8, 4, 4))


@pytest.mark.parametrize("name, module, in_shape", [
    ("global_avgpool", lambda: torch.nn.AdaptiveAvgPool2d(1), (5, 7, 3)),
    ("global_maxpool", lambda: torch.nn.AdaptiveMaxPool2d(1), (5, 7, 3)),
    ("flatten", lambda: torch.nn.Flatten(), (5, 7, 3)),
    ("flatten", lambda: torch.nn.Flatten(), (12,)),
    ("softmax", lambda: torch.nn.Softmax(dim=1), (5, 7, 3)),
    ("lrn", lambda: torch.nn.LocalResponseNorm(5), (6, 4, 4)),
    ("relu", lambda: torch.nn.ReLU(), (3, 2, 2)),
    ("dropout", lambda: torch.nn.Dropout(0.5), (10,)),
])
def test_shape_preserving_and_reducing_ops(name, module, in_shape):
    expected = tuple(module()(torch.zeros(1, *in_shape)).shape[1:])
    assert apply(name, {}, in_shape)[2] == expected


@pytest.mark.parametrize("in_shape, module", [
    ((6, 4, 4), lambda: torch.nn.BatchNorm2d(6)), ((9,), lambda: torch.nn.BatchNorm1d(9))])
def test_batchnorm_params_and_buffers_match_pytorch(in_shape, module):
    op, attrs, shape = apply("batchnorm", {}, in_shape)
    m = module()
    assert shape == in_shape
    assert op.params(attrs, [in_shape]) == {k: tuple(v.shape) for k, v in m.named_parameters()}
    assert op.buffers(attrs, [in_shape]) == {k: tuple(v.shape) for k, v in m.named_buffers()
                                             if k != "num_batches_tracked"}
    assert (attrs.eps, attrs.momentum) == (m.eps, m.momentum)


def test_dense_layout_matches_pytorch():
    op, attrs, shape = apply("dense", {"out": 7}, (12,))
    m = torch.nn.Linear(12, 7)
    assert op.params(attrs, [(12,)]) == {k: tuple(v.shape) for k, v in m.named_parameters()}
    assert op.cost(attrs, [(12,)], shape).macs == 84


def test_merges():
    assert apply("add", {}, (4, 3, 3), (4, 3, 3), (4, 3, 3))[2] == (4, 3, 3)
    assert apply("concat", {}, (4, 3, 3), (2, 3, 3))[2] == (6, 3, 3)
    assert apply("concat", {}, (4,), (2,))[2] == (6,)
    assert apply("mul", {}, (4, 1, 1), (4, 3, 3))[2] == (4, 3, 3)
    for name, shapes in (("add", [(4, 3, 3), (4, 3, 2)]), ("concat", [(4, 3, 3), (4,)]),
                         ("mul", [(4, 3, 3), (2, 1, 1)])):
        with pytest.raises(ShapeError):
            apply(name, {}, *shapes)


@pytest.mark.parametrize("name, args, in_shape, ops", [
    ("relu", {}, (2, 3, 3), 18), ("sigmoid", {}, (5,), 20), ("tanh", {}, (5,), 25),
    ("leaky_relu", {}, (5,), 10), ("identity", {}, (5,), 0), ("batchnorm", {}, (2, 3, 3), 36),
    ("maxpool", {"kernel": 2}, (1, 4, 4), 4 * 3), ("avgpool", {"kernel": 2}, (1, 4, 4), 4 * 4),
    ("global_avgpool", {}, (2, 3, 3), 18), ("global_maxpool", {}, (2, 3, 3), 16),
    ("lrn", {"size": 3}, (4, 1, 1), 4 * 7), ("softmax", {}, (10,), 50),
    ("conv", {"out": 2, "kernel": 1}, (1, 3, 3), 18), ("dense", {"out": 3}, (4,), 3),
    ("dropout", {}, (9,), 0), ("flatten", {}, (2, 2, 2), 0),
])
def test_full_policy_op_counts(name, args, in_shape, ops):
    op, attrs, shape = apply(name, args, in_shape)
    assert op.cost(attrs, [in_shape], shape).ops == ops
