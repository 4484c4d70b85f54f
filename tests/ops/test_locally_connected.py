"""locally_connected: its cases against PyTorch (F.unfold + einsum) on the CPU (float64, with
finite differences, and float32) and in the CUDA backend; the shape rule, parameters, cost and
receptive field against conv's; the initial weights' scale per position; bad inputs as shape
errors and located errors of `cnngraph check`."""
import numpy as np
import pytest

import cnngraph
from cnngraph.kernels.cpu import chunks as chunking
from cnngraph.ops.base import ShapeError
from cnngraph.ops.locally_connected import cpu
from cnngraph.ops.locally_connected.cases import CASES

from helpers import DTYPES, apply, assert_located_error, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_locally_connected(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@pytest.mark.parametrize("chunks", [2, 3, 8])
def test_chunks_split_positions_and_samples(monkeypatch, chunks):
    """The CPU kernels cut into chunks (of positions forward and for the weight gradient, of
    samples for the input gradient; more chunks than samples at 8) agree with one chunk."""
    rng = np.random.default_rng(chunks)
    n, channels, out, (oh, ow) = 5, 2, 3, (3, 4)
    x = rng.standard_normal((n, channels, 7, 8))
    weight = rng.standard_normal((oh, ow, out, channels, 3, 2))
    bias, dy = rng.standard_normal(out * oh * ow), rng.standard_normal((n, out, oh, ow))
    geometry = (2, 2, 1, 0)         # stride_h, stride_w, pad_top, pad_left

    monkeypatch.setattr(chunking, "MIN_PARALLEL", 0)   # as many chunks as the workspaces hold

    def run(parts):
        patches = np.full((n, parts * channels * 6), np.nan)
        rows = np.full((n, parts * out), np.nan)
        y, dx = np.full((n, out, oh, ow), np.nan), np.full_like(x, np.nan)
        weight_grad, bias_grad = np.full_like(weight, np.nan), np.full_like(bias, np.nan)
        cpu.locally_connected_fwd_cpu(x, weight, bias, y, patches, rows, *geometry, True)
        cpu.locally_connected_bwd_cpu(x, weight, dy, dx, weight_grad, bias_grad, patches, rows,
                                      True, True, *geometry, True)
        return y, dx, weight_grad, bias_grad

    for split, whole in zip(run(chunks), run(1), strict=True):
        np.testing.assert_allclose(split, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("args", [
    {"out": 4, "kernel": 3}, {"out": 2, "kernel": [3, 2], "stride": 2, "padding": 1},
    {"out": 3, "kernel": 4, "stride": 3, "padding": "same"},
    {"out": 5, "kernel": [2, 3], "padding": [2, 0, 1, 3], "bias": False}])
def test_shape_and_cost_are_convs(args):
    """Output shape, MACs and bias ops as conv's on the same arguments; a conv's parameters
    at every output position."""
    in_shape = (3, 8, 7)
    conv_op, conv_attrs, conv_shape = apply("conv", args, in_shape)
    op, attrs, shape = apply("locally_connected", args, in_shape)
    assert shape == conv_shape
    assert op.cost(attrs, [in_shape], shape) == conv_op.cost(conv_attrs, [in_shape], shape)
    out, oh, ow = shape
    conv_params = conv_op.params(conv_attrs, [in_shape])
    params = op.params(attrs, [in_shape])
    assert params["weight"] == (oh, ow, *conv_params["weight"])
    assert params.get("bias") == ((out, oh, ow) if args.get("bias", True) else None)


def test_full_policy_counts_the_bias():
    assert full_ops("locally_connected", {"out": 4, "kernel": 3}, (2, 5, 6)) == 4 * 3 * 4
    assert full_ops("locally_connected", {"out": 4, "kernel": 3, "bias": False}, (2, 5, 6)) == 0


def test_receptive_field_is_convs(write_spec):
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [1, 12, 12]\nlayers:\n"
        "  - locally_connected: {out: 2, kernel: 3, stride: 2}\n"
        "  - locally_connected: {out: 2, kernel: [3, 2]}\n"))
    first, second = net.nodes
    assert first.receptive_field == (3, 3) and first.jump == (2, 2)
    assert second.receptive_field == (7, 5) and second.jump == (2, 2)


def test_each_positions_weight_has_a_convs_scale(write_spec):
    """He normal (a ReLU follows) with conv's fan_in = in * kh * kw at every position, not the
    fan of the whole tensor; the bias starts at 0."""
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [8, 6, 6]\nlayers:\n"
        "  - locally_connected: {out: 16, kernel: 3}\n  - relu\n  - flatten\n"
        "  - dense: {out: 3}\n"))
    params = cnngraph.compile(net, seed=1).host_params()
    weight, bias = params["locally_connected1.weight"], params["locally_connected1.bias"]
    assert weight.shape == (4, 4, 16, 8, 3, 3)
    np.testing.assert_allclose(weight.std(), np.sqrt(2 / (8 * 9)), rtol=0.05)
    np.testing.assert_allclose(weight.reshape(16, -1).std(axis=1), np.sqrt(2 / (8 * 9)),
                               rtol=0.25)
    assert not bias.any()


def test_needs_a_map():
    with pytest.raises(ShapeError, match=r"expected an input of shape \(C, H, W\)"):
        apply("locally_connected", {"out": 4, "kernel": 3}, (6,))


@pytest.mark.parametrize("layer, message, hint", [
    ("locally_connected: {out: 4, kernel: 3}", "expected an input of shape (C, H, W)",
     "move the op before `flatten`"),
])
def test_check_locates_a_vector_input(cli, write_spec, layer, message, hint):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - flatten\n  - {layer}\n")
    assert_located_error(cli("check", path), path, 6, message, hint)


@pytest.mark.parametrize("args, message, hint", [
    ("{out: 4, kernel: 7}", "`locally_connected` output size would be 0x0: the 7x7 window "
     "does not fit the 6x6 input with padding [0, 0, 0, 0]", "add padding"),
    ("{out: 4, kernel: [3, 9], padding: 1}", "output size would be 6x0",
     "use a smaller kernel"),
    ("{out: 4, kernel: 3, dilation: 2}", "unknown key `dilation` of `locally_connected`", None),
    ("{out: 0, kernel: 3}", "expected an integer >= 1, received 0", None),
    ("{kernel: 3}", "`out`", None),
])
def test_check_prints_a_located_error(cli, write_spec, args, message, hint):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - locally_connected: {args}\n  - flatten\n")
    assert_located_error(cli("check", path), path, 5, message, hint)
