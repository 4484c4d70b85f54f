"""Every op's CPU forward and backward kernels against PyTorch autograd, in float64 (~1e-9)
and float32 (~1e-4), over shapes, strides, paddings, dilations and groups, with odd sizes and
batch size 1; and against float64 finite differences (`cnngraph.tools.gradcheck`, the checker behind
`cnngraph check --grad`) on a sample of coordinates of every parameter and of the input.

Each case is a tiny network: the op under test, then flatten and a dense layer, so the loss,
the dense layer's weight gradient (which sees the op's output) and the input gradient all
depend on the op's forward and backward kernels.
"""
import numpy as np
import pytest

import cnngraph
from cnngraph.tools.gradcheck import gradient_check
from cnngraph.tools.torch_reference import reference

TOLERANCE = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=1e-4, atol=2e-5)}


def build(write_spec, layers: str, input_shape=(3, 9, 9), head=True):
    text = f"version: 1\ninput: {list(input_shape)}\nlayers:\n{layers}"
    if head:
        text += "  - flatten\n  - dense: {out: 4}\n"
    return cnngraph.load(write_spec(text))


def check(net, dtype="float64", batch=3, seed=0, smoothing=0.0, fd=True):
    model = cnngraph.compile(net, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *net.input_shape))
    labels = rng.integers(0, net.output_shape[0], batch)
    ref = reference(model, x, labels, smoothing)
    tol = TOLERANCE[dtype]
    logits = model.forward(x)                              # eval mode, before any update
    np.testing.assert_allclose(logits, ref["logits"], **tol)
    loss = model.loss_and_grad(x, labels, smoothing, input_grad=True)
    np.testing.assert_allclose(loss, ref["loss"], **tol)
    for name, grad in ref["grads"].items():
        np.testing.assert_allclose(model.grads[name], grad, **tol, err_msg=name)
    np.testing.assert_allclose(model.input_grad, ref["input_grad"], **tol, err_msg="input")
    for name, value in ref["buffers"].items():
        np.testing.assert_allclose(model.buffers[name], value, **tol, err_msg=name)
    if fd and dtype == "float64":
        for layer in gradient_check(net, samples=2, batch=batch, seed=seed):
            assert layer.worst < 1e-5, layer
    return model


CONV_CASES = [
    "{out: 4, kernel: 3}",
    "{out: 4, kernel: 3, padding: 1, bias: false}",
    "{out: 4, kernel: 3, padding: 1}",
    "{out: 5, kernel: [5, 2], padding: [2, 0, 1, 3]}",
    "{out: 3, kernel: [2, 4], padding: [0, 1, 2, 0]}",
    "{out: 6, kernel: [2, 3], dilation: [1, 2], groups: 3, padding: [1, 0, 0, 2]}",
    "{out: 4, kernel: 1, padding: 1}",
    "{out: 5, kernel: [3, 2], stride: [2, 1], padding: [1, 0, 2, 1]}",
    "{out: 6, kernel: 3, dilation: 2, padding: 2}",
    "{out: 6, kernel: 3, groups: 3, padding: 1}",
    "{out: 3, kernel: 3, groups: 3, stride: 2}",
    "{out: 4, kernel: 1}",
    "{out: 4, kernel: 1, stride: 2}",
    "{out: 4, kernel: 4, stride: 3, padding: same}",
    "{out: 2, kernel: 5, stride: 2, padding: 2, dilation: 2}",
    "{out: 40, kernel: [5, 3], padding: 1}",  # weight gradient over several 32 x 32 tiles
]


@pytest.fixture(params=["flat", "saved", "rebuilt", "winograd"])
def columns(request, monkeypatch):
    """Every way the CPU conv gets its columns: flat (every conv here whose windows overlap),
    or by im2col, with the backward pass's columns kept from the forward pass (convs with few
    output channels) or rebuilt in a per-thread workspace; or Winograd's tiles (every 3x3,
    stride-1 conv padded by 1 here, the others by im2col)."""
    monkeypatch.setattr("cnngraph.ops.conv.cpu.FLAT_UP_TO", 1 << 20 if request.param == "flat"
                        else -1)
    monkeypatch.setattr("cnngraph.ops.conv.cpu.FLAT_OUT_UP_TO", 1 << 20)
    monkeypatch.setattr("cnngraph.ops.conv.cpu.WINOGRAD_FROM",
                        1 if request.param == "winograd" else 1 << 30)
    monkeypatch.setattr("cnngraph.ops.conv.cpu.WINOGRAD_MAPS_FROM", 1)
    if request.param == "rebuilt":
        monkeypatch.setattr("cnngraph.ops.conv.cpu.SAVE_COLUMNS_UP_TO", 0)
    return request.param


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("args", CONV_CASES)
def test_conv(write_spec, args, dtype, columns):
    model = check(build(write_spec, f"  - conv: {args}\n"), dtype)
    a = model.net.nodes[0].attrs
    overlapping = a.kernel[0] > a.stride[0] or a.kernel[1] > a.stride[1]
    flat = columns == "flat" and overlapping
    assert ("conv_flat_fwd_cpu" in model.source()) == flat
    winograd = a.kernel == (3, 3) and a.stride == (1, 1) and a.dilation == (1, 1) \
        and a.groups == 1 and a.padding == (1, 1, 1, 1)
    assert ("conv_winograd_fwd_cpu" in model.source()) == (columns == "winograd" and winograd)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("input_shape, batch, columns", [
    ((2, 8, 8), 11, 4),          # a GEMM stack per sample: several per chunk
    ((3, 7, 6), 3, 256), ((2, 1, 1), 2, 256), ((2, 2, 5), 4, 256), ((2, 10, 9), 5, 256),
    ((2, 9, 9), 1, 256)])        # one sample: a chunk with none
def test_winograd_on_even_and_odd_maps(write_spec, input_shape, batch, columns, dtype,
                                       monkeypatch):
    """Winograd's 4x4 tiles on maps of every size modulo 4 (the last tile row or column cut),
    maps smaller than a tile, chunks of several GEMM stacks and a chunk of no samples."""
    monkeypatch.setattr("cnngraph.ops.conv.cpu.WINOGRAD_FROM", 1)
    monkeypatch.setattr("cnngraph.ops.conv.cpu.WINOGRAD_MAPS_FROM", 1)
    monkeypatch.setattr("cnngraph.ops.conv.cpu.WINOGRAD_COLUMNS", columns)
    model = check(build(write_spec, "  - conv: {out: 5, kernel: 3, padding: 1}\n  - relu\n",
                        input_shape), dtype, batch=batch)
    assert "conv_winograd_fwd_cpu" in model.source()


def test_winograd_gradient_after_a_bigger_batch(write_spec, monkeypatch):
    """A batch of one after a batch of four: the chunk that now has no samples must not hand
    on its share of the weight gradient from the step before."""
    monkeypatch.setattr("cnngraph.ops.conv.cpu.WINOGRAD_FROM", 1)
    model = cnngraph.compile(build(write_spec, "  - conv: {out: 5, kernel: 3, padding: 1}\n",
                                   (2, 8, 8)), dtype="float64")
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


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("batch", [1, 5])
def test_conv_batch_sizes(write_spec, batch, stride, columns):
    check(build(write_spec, f"  - conv: {{out: 4, kernel: 3, stride: {stride}}}\n", (2, 7, 8)),
          batch=batch)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "identity"])
def test_conv_and_dense_with_a_fused_activation(write_spec, activation, dtype, columns):
    """The activation runs inside the conv's and the dense layer's output loops, and its
    backward before theirs (cnngraph.passes.fuse); results as PyTorch's unfused layers."""
    net = build(write_spec, f"  - conv: {{out: 4, kernel: 3, padding: 1}}\n  - {activation}\n"
                f"  - flatten\n  - dense: {{out: 5}}\n  - {activation}\n", head=False)
    model = check(net, dtype)
    fused = [n.activation for n in model.train_net.nodes if n.activation]
    assert fused == [(activation, 0.0)] * 2


POOL_CASES = [
    "maxpool: {kernel: 2}", "maxpool: {kernel: 3, stride: 2, padding: 1}",
    "maxpool: {kernel: 3, stride: 2, ceil_mode: true}", "maxpool: {kernel: [2, 3], stride: 1}",
    "avgpool: {kernel: 2}", "avgpool: {kernel: 3, stride: 2}",
    "avgpool: {kernel: 3, stride: 2, padding: 1}",
    "avgpool: {kernel: [3, 2], stride: 1}",
    "avgpool: {kernel: 3, stride: 2, padding: 1, count_include_pad: false}",
    "avgpool: {kernel: 3, stride: 2, ceil_mode: true}",
    "avgpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}",
    "global_avgpool", "global_maxpool",
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layer", POOL_CASES)
def test_pooling(write_spec, layer, dtype):
    check(build(write_spec, f"  - {layer}\n", (3, 9, 10)), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layer", ["avgpool: {kernel: 2}", "avgpool: {kernel: [2, 3]}"])
def test_pooling_windows_that_tile_the_input(write_spec, layer, dtype):
    """Windows covering every pixel once: avgpool's backward writes each input gradient row
    once instead of zeroing it and summing into it, so a pixel it missed would hold a stale
    value. Two steps with different inputs: the second's gradients must be its own."""
    net = build(write_spec, f"  - {layer}\n", (3, 8, 6))
    model = check(net, dtype)
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((3, 3, 8, 6)), rng.integers(0, 4, 3)
    model.loss_and_grad(x, labels, input_grad=True)
    np.testing.assert_allclose(model.input_grad, reference(model, x, labels)["input_grad"],
                               **TOLERANCE[dtype])


POINTWISE = ["relu", "leaky_relu: {slope: 0.2}", "sigmoid", "tanh", "identity", "softmax"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layer", POINTWISE)
def test_pointwise_on_maps_and_vectors(write_spec, layer, dtype):
    check(build(write_spec, f"  - {layer}\n", (3, 4, 5)), dtype)
    check(build(write_spec, f"  - dense: {{out: 6}}\n  - {layer}\n  - dense: {{out: 3}}\n",
                (7,), head=False), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batchnorm_on_maps_and_vectors_updates_running_statistics(write_spec, dtype):
    check(build(write_spec, "  - conv: {out: 4, kernel: 3}\n  - batchnorm: {momentum: 0.3}\n"),
          dtype, batch=4)
    check(build(write_spec, "  - dense: {out: 6}\n  - batchnorm: {eps: 0.001}\n"
                            "  - dense: {out: 3}\n", (5,), head=False), dtype, batch=4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_batchnorm_with_a_fused_activation(write_spec, activation, dtype):
    """The activation runs in batch norm's output loop (maps and vectors), its backward before
    batch norm's; results as PyTorch's unfused layers."""
    model = check(build(write_spec, f"  - conv: {{out: 4, kernel: 3}}\n  - batchnorm\n"
                                    f"  - {activation}\n"), dtype, batch=4)
    assert [n.activation for n in model.train_net.nodes if n.op == "batchnorm"] == \
        [(activation, 0.0)]
    check(build(write_spec, f"  - dense: {{out: 6}}\n  - batchnorm\n  - {activation}\n"
                            "  - dense: {out: 3}\n", (5,), head=False), dtype, batch=4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lrn(write_spec, dtype):
    check(build(write_spec, "  - lrn: {size: 3, alpha: 0.01, beta: 0.75, k: 2}\n", (6, 3, 4)),
          dtype)
    check(build(write_spec, "  - lrn: {size: 4, alpha: 0.1, beta: 0.5, k: 1}\n", (5, 2, 3)),
          dtype)


MERGES = {
    "add": "  - parallel:\n      - [conv: {out: 3, kernel: 3, padding: 1}]\n      - []\n"
           "    merge: add\n",
    "concat": "  - parallel:\n      - [conv: {out: 2, kernel: 1}]\n      - []\n"
              "      - [maxpool: {kernel: 3, stride: 1, padding: 1}]\n    merge: concat\n",
    "mul_gate": "  - parallel:\n      - []\n      - [global_avgpool, conv: {out: 3, kernel: 1},"
                " sigmoid]\n    merge: mul\n",
    "mul_equal": "  - parallel:\n      - [conv: {out: 3, kernel: 1}]\n      - [tanh]\n"
                 "    merge: mul\n",
    "fan_out_three": "  - conv: {out: 3, kernel: 1}\n    id: a\n  - relu:\n    id: b\n"
                     "  - add:\n    from: [a, b]\n    id: c\n  - add:\n    from: [c, a, input]\n",
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(MERGES))
def test_merges_and_fan_out(write_spec, case, dtype):
    net = build(write_spec, MERGES[case], (3, 5, 6))
    check(net, dtype)


def test_concat_and_mul_of_vectors(write_spec):
    check(build(write_spec, "  - parallel:\n      - [dense: {out: 3}]\n      - [dense: {out: 2}]\n"
                            "    merge: concat\n  - dense: {out: 3}\n", (4,), head=False))
    check(build(write_spec, "  - parallel:\n      - [dense: {out: 3}]\n"
                            "      - [dense: {out: 3}, sigmoid]\n    merge: mul\n", (4,),
                head=False))


def test_label_smoothing(write_spec):
    check(build(write_spec, "  - conv: {out: 2, kernel: 3}\n"), smoothing=0.1)


def test_dropout_is_inverted_seeded_and_only_in_training(write_spec):
    net = build(write_spec, "  - dropout: {rate: 0.5}\n", (4, 8, 8))
    model = cnngraph.compile(net, dtype="float64", seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 8, 8))
    labels = np.array([0, 3])
    w, b = np.array(model.params["dense1.weight"]), np.array(model.params["dense1.bias"])
    np.testing.assert_allclose(model.forward(x), x.reshape(2, -1) @ w.T + b, rtol=1e-12)

    def mask_of(m):
        m.loss_and_grad(x, labels)
        return np.array(m.program(True).bound[2].dropout1__mask).reshape(2, -1)

    mask = mask_of(model)
    assert set(np.unique(mask)) == {0.0, 2.0}
    assert 0.4 < (mask != 0).mean() < 0.6
    # The loss and the dense gradient see exactly the masked, rescaled activations.
    h = x.reshape(2, -1) * mask
    logits = h @ w.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dlogits = (p - np.eye(4)[labels]) / 2
    np.testing.assert_allclose(model.grads["dense1.weight"], dlogits.T @ h, rtol=1e-10)
    # Same seed, same masks; the next step and another seed draw new ones.
    twin = cnngraph.compile(net, dtype="float64", seed=3)
    assert np.array_equal(mask_of(twin), mask)
    assert not np.array_equal(mask_of(twin), mask)
    assert not np.array_equal(mask_of(cnngraph.compile(net, dtype="float64", seed=4)), mask)
