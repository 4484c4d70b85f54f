"""conv: its cases against PyTorch on every CPU algorithm (flat columns, im2col with columns
kept or rebuilt, Winograd) in float64 (with finite differences) and float32, and in the CUDA
backend; Winograd's edge cases; batch sizes; fused activations; label smoothing; and the shape,
parameter and cost rules against PyTorch's."""
import itertools
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.ops.base import Case, ShapeError, numel
from cnngraph.ops.conv.cases import CASES
from cnngraph.ops.conv.choose import choose
from cnngraph.ops.window import out_size, same_padding
from cnngraph.tools.torch_reference import reference

from helpers import DTYPES, TOLERANCE, apply, build, check_op, full_ops, over

F = torch.nn.functional

# Where the CPU conv's choice of algorithm is tuned: every test here that steers it goes
# through `steer`, so a move of these constants is one line to change.
CPU_CONV = "cnngraph.ops.conv.choose"


def steer(monkeypatch, **constants):
    """Set the CPU conv's algorithm thresholds (FLAT_UP_TO, WINOGRAD_FROM, ...) for one test."""
    for name, value in constants.items():
        monkeypatch.setattr(f"{CPU_CONV}.{name}", value)


# Every way the CPU conv gets its columns: flat planes (every conv here whose windows overlap),
# or by im2col, with the backward pass's columns kept from the forward pass (convs with few
# output channels) or rebuilt in a per-thread workspace; or Winograd's tiles (every 3x3,
# stride-1 conv padded by 1 here, the others by im2col). Depthwise convs take their own kernels
# whatever the steering.
STEERING = {
    columns: {"FLAT_UP_TO": 1 << 20 if columns == "flat" else -1, "FLAT_OUT_UP_TO": 1 << 20,
              "WINOGRAD_FROM": 1 if columns == "winograd" else 1 << 30,
              "WINOGRAD_MAPS_FROM": 1, **({"SAVE_COLUMNS_UP_TO": 0} if columns == "rebuilt"
                                         else {})}
    for columns in ("flat", "saved", "rebuilt", "winograd")}


@pytest.fixture(params=list(STEERING))
def columns(request, monkeypatch):
    steer(monkeypatch, **STEERING[request.param])
    return request.param


def _distinct_algorithms(cases):
    """(case, columns) for each case under each steering that gives its conv an algorithm (and
    workspaces) of its own: a steering that changes nothing for a case (Winograd's for a 5x5
    conv, any for a depthwise one) would run the same kernels again."""
    pairs, seen = [], set()
    with tempfile.TemporaryDirectory() as folder:
        for case, columns in itertools.product(cases, STEERING):
            node = build(Path(folder), case).nodes[0]
            with mock.patch.multiple(CPU_CONV, **STEERING[columns]):
                choices = (choose(node, training=True), choose(node, training=False))
            if (case.id, choices) not in seen:
                seen.add((case.id, choices))
                pairs.append(pytest.param(case, columns, id=f"{columns}-{case.id}"))
    return pairs


@DTYPES
@pytest.mark.parametrize("case, columns", _distinct_algorithms(CASES), indirect=["columns"])
def test_conv(tmp_path, case, dtype, columns):
    model = check_op(tmp_path, case, dtype=dtype)
    a = model.net.nodes[0].attrs
    overlapping = a.kernel[0] > a.stride[0] or a.kernel[1] > a.stride[1]
    depthwise = a.groups == a.out == model.net.nodes[0].in_shapes[0][0]
    assert ("conv_depthwise" in model.source()) == depthwise     # whatever the columns
    flat = columns == "flat" and overlapping and not depthwise
    assert ("conv_flat_fwd_cpu" in model.source()) == flat
    winograd = a.kernel == (3, 3) and a.stride == (1, 1) and a.dilation == (1, 1) \
        and a.groups == 1 and a.padding == (1, 1, 1, 1)
    assert ("conv_winograd_fwd_cpu" in model.source()) == (columns == "winograd" and winograd)


@over([replace(case, input=(3, 7, 6)) for case in CASES])
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_cuda_float32_and_batch_of_one(tmp_path):
    case = Case("- conv: {out: 5, kernel: 3, padding: 1, groups: 1}", (3, 7, 6))
    check_op(tmp_path, case, "cuda", "float32")
    check_op(tmp_path, replace(case, batch=1), "cuda")


@DTYPES
@pytest.mark.parametrize("input_shape, batch, columns", [
    ((2, 8, 8), 11, 4),          # a GEMM stack per sample: several per chunk
    ((3, 7, 6), 3, 256), ((2, 1, 1), 2, 256), ((2, 2, 5), 4, 256), ((2, 10, 9), 5, 256),
    ((2, 9, 9), 1, 256)])        # one sample: a chunk with none
def test_winograd_on_even_and_odd_maps(tmp_path, input_shape, batch, columns, dtype,
                                       monkeypatch):
    """Winograd's 4x4 tiles on maps of every size modulo 4 (the last tile row or column cut),
    maps smaller than a tile, chunks of several GEMM stacks and a chunk of no samples."""
    steer(monkeypatch, WINOGRAD_FROM=1, WINOGRAD_MAPS_FROM=1, WINOGRAD_COLUMNS=columns)
    case = Case("- conv: {out: 5, kernel: 3, padding: 1}\n- relu", input_shape, batch=batch)
    model = check_op(tmp_path, case, dtype=dtype)
    assert "conv_winograd_fwd_cpu" in model.source()


def test_winograd_gradient_after_a_bigger_batch(tmp_path, monkeypatch):
    """A batch of one after a batch of four: the chunk that now has no samples must not hand
    on its share of the weight gradient from the step before."""
    steer(monkeypatch, WINOGRAD_FROM=1)
    model = cnngraph.compile(build(tmp_path, Case("- conv: {out: 5, kernel: 3, padding: 1}",
                                                  (2, 8, 8))), dtype="float64")
    assert "conv_winograd_fwd_cpu" in model.source()
    rng = np.random.default_rng(0)
    for batch in (4, 1):
        x = rng.standard_normal((batch, 2, 8, 8))
        labels = rng.integers(0, model.net.output_shape[0], batch)
        model.loss_and_grad(x, labels)
    ref = reference(model, x, labels, 0.0)
    for name, grad in ref["grads"].items():
        np.testing.assert_allclose(model.grads[name], grad, **TOLERANCE["float64"],
                                   err_msg=name)


@DTYPES
@pytest.mark.parametrize("activation", ["", "\n- relu"], ids=["plain", "relu"])
def test_pointwise_conv_stacks(tmp_path, dtype, activation, monkeypatch):
    """A 1x1 conv's stacked samples (their rows copied side by side, no im2col): stacks of
    three 3x3 maps, each chunk of the batch of 7 ending in a partial stack."""
    steer(monkeypatch, MAX_STACK=3)
    case = Case(f"- conv: {{out: 6, kernel: 1}}{activation}", (5, 3, 3), batch=7)
    model = check_op(tmp_path, case, dtype=dtype)
    assert "stack=3" in model.source()


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("batch", [1, 5])
def test_conv_batch_sizes(tmp_path, batch, stride, columns):
    check_op(tmp_path, Case(f"- conv: {{out: 4, kernel: 3, stride: {stride}}}", (2, 7, 8),
                            batch=batch))


@DTYPES
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "identity"])
def test_conv_and_dense_with_a_fused_activation(tmp_path, activation, dtype, columns):
    """The activation runs inside the conv's and the dense layer's output loops, and its
    backward before theirs (cnngraph.passes.fuse); results as PyTorch's unfused layers."""
    case = Case(f"- conv: {{out: 4, kernel: 3, padding: 1}}\n- {activation}\n- flatten\n"
                f"- dense: {{out: 5}}\n- {activation}", head=False)
    model = check_op(tmp_path, case, dtype=dtype)
    fused = [n.activation for n in model.train_net.nodes if n.activation]
    assert fused == [(activation, 0.0)] * 2


def test_label_smoothing(tmp_path):
    check_op(tmp_path, Case("- conv: {out: 2, kernel: 3}"), smoothing=0.1)


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


def test_full_policy_op_count():
    assert full_ops("conv", {"out": 2, "kernel": 1}, (1, 3, 3)) == 18
