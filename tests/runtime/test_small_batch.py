"""Inference of batches smaller than the chunks (batch-1 prediction): its own program, with batch
norm folded only into convs with fewer weights than outputs, convs cut by output channels
(im2col, Winograd; a few channels' products by the direct micro-kernels) and depthwise 3x3 convs
along planes on any map, gives each sample what the whole batch gives it and what PyTorch's
eval mode gives; it reads edits of the weights made in place; and a net of tiny layers hands no
work to the helper threads."""
import numba
import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.kernels.cpu import chunks
from cnngraph.ops.base import Case
from cnngraph.ops.conv.choose import choose
from cnngraph.ops.conv.cpu.im2col import TILED_BLOCK, TILED_FROM, TILED_ROWS_UP_TO, _tiled_rows
from cnngraph.tools.torch_reference import run

from helpers import FOLDING_SPEC, TOLERANCE, build, trained_to_fold

# 3x3 convs padded by 1 on 8x8 maps (Winograd in a batch, im2col for one sample unless
# steered), a 1x1 conv, a strided conv and batch norms that fold into their convs
LAYERS = """- conv: {out: 16, kernel: 3, padding: 1}
- batchnorm
- relu
- conv: {out: 16, kernel: 3, padding: 1, bias: false}
- batchnorm
- relu
- conv: {out: 8, kernel: 1}
- conv: {out: 12, kernel: 3, stride: 2}
- batchnorm
- flatten
- dense: {out: 5}"""


def steer(monkeypatch, winograd_small_batch: int) -> None:
    """Winograd for every 3x3 conv of a batch, and for one sample's on maps of at least
    `winograd_small_batch` tiles."""
    monkeypatch.setattr("cnngraph.ops.conv.choose.WINOGRAD_FROM", 1)
    monkeypatch.setattr("cnngraph.ops.conv.choose.WINOGRAD_SMALL_BATCH", winograd_small_batch)


def trained(tmp_path, seed=0):
    """A model of LAYERS whose batch norms' statistics and parameters have moved."""
    model = cnngraph.compile(build(tmp_path, Case(LAYERS, (3, 8, 8))), dtype="float64",
                             seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        model.loss_and_grad(rng.standard_normal((4, 3, 8, 8)),
                            rng.integers(0, model.net.output_shape[0], 4))
        model.flat_params -= 0.1 * model.flat_grads
    return model


def torch_eval(model, x):
    params = {k: torch.tensor(np.array(v)) for k, v in model.params.items()}
    buffers = {k: torch.tensor(np.array(v)) for k, v in model.buffers.items()}
    return run(model.net, params, buffers, torch.tensor(x), training=False).numpy()


@pytest.mark.parametrize("winograd", [False, True], ids=["im2col", "winograd"])
def test_each_sample_alone_matches_the_batch_and_pytorch(tmp_path, monkeypatch, winograd):
    steer(monkeypatch, 1 if winograd else 1 << 30)
    model = trained(tmp_path)
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8))
    together = model.forward(x)
    alone = np.concatenate([model.forward(x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(alone, together, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(alone, torch_eval(model, x), **TOLERANCE["float64"])
    small, batch = model.program(False, small_batch=True), model.program(False)
    # batch norm folded for one sample only where the conv has fewer weights than outputs
    assert [f.conv for f in batch.folds] == ["conv1", "conv2", "conv4"]
    assert [f.conv for f in small.folds] == ["conv1"]
    assert small.source.count("batchnorm_fwd_cpu(") == 2 and "batchnorm_fwd_cpu" not in batch.source
    assert ("conv_winograd_fwd_cpu" in small.source) == winograd
    assert "conv_winograd_fwd_cpu" in batch.source


# one sample's 1x1 conv (8 channels) and 3x3 conv by im2col (40 channels, 20 a chunk) on
# 17x17 maps (two blocks of positions) take the direct micro-kernels; the depthwise conv on its
# 8x8 map takes planes for one sample, rows in a batch
MOBILE = """- conv: {out: 8, kernel: 1}
- relu6
- conv: {out: 40, kernel: 3, padding: 1}
- batchnorm
- relu
- maxpool: {kernel: 2}
- conv: {out: 40, kernel: 3, padding: 1, groups: 40, stride: 2}
- relu6
- flatten
- dense: {out: 5}"""


def test_few_channels_tiled_and_depthwise_planes_match_the_batch_and_pytorch(tmp_path):
    assert 17 * 17 >= TILED_BLOCK + 16 and 40 // 2 <= TILED_ROWS_UP_TO and 17 * 17 >= TILED_FROM
    model = cnngraph.compile(build(tmp_path, Case(MOBILE, (4, 17, 17))), dtype="float64",
                             chunks=2)
    rng = np.random.default_rng(3)
    for name, value in model.params.items():     # biases and batch norm's affine not 0 or 1
        if not name.endswith(".weight") or name.startswith("batchnorm"):
            value[:] = rng.standard_normal(value.shape)
    x = rng.standard_normal((3, 4, 17, 17))
    together = model.forward(x)
    alone = np.concatenate([model.forward(x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(alone, together, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(alone, torch_eval(model, x), **TOLERANCE["float64"])
    small, batch = model.program(False, small_batch=True), model.program(False)
    assert "conv_depthwise_3x3_s2_fwd_cpu" in small.source
    assert "conv_depthwise_rows_fwd_cpu" in batch.source


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_rows_give_the_products_plus_bias_then_the_activation(dtype):
    """Every count of rows (whole tiles of six and the rest) on lengths around the tiles and
    blocks of positions, in rows of the output and columns that lie apart."""
    rng = np.random.default_rng(0)
    for rows, hw in [(1, 16), (5, 17), (6, 31), (7, 128), (13, TILED_BLOCK + 15),
                     (12, TILED_BLOCK + 16), (3, 2 * TILED_BLOCK + 40)]:
        k, lo = 11, 2
        src = rng.standard_normal((k, hw + 3)).astype(dtype)    # rows hw + 3 apart
        w = rng.standard_normal((lo + rows + 1, k)).astype(dtype)
        b = rng.standard_normal(len(w)).astype(dtype)
        offsets = (np.arange(k) * (hw + 3)).astype(np.int32)
        for has_bias, act in [(True, 0), (False, 1), (True, 6)]:   # none, relu, relu6
            out = np.full((len(w), hw), 7.0, dtype)
            _tiled_rows(out, w, b, lo, lo + rows, src.reshape(-1), offsets, hw, has_bias, act,
                        0.0)
            want = w[lo:lo + rows] @ src[:, :hw] + (b[lo:lo + rows, None] if has_bias else 0)
            want = {0: want, 1: np.maximum(want, 0), 6: np.clip(want, 0, 6)}[act]
            np.testing.assert_allclose(out[lo:lo + rows], want, rtol=1e-5, atol=1e-5)
            assert (out[:lo] == 7).all() and (out[lo + rows:] == 7).all()


def _forward_on(model, x, threads: int):
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return model.forward(x)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_same_result_on_any_thread_count(tmp_path, monkeypatch, threads):
    """The output channels cut into chunks: each chunk's GEMM rows are its own, so one sample's
    output does not depend on how many threads share the chunks."""
    steer(monkeypatch, 1)
    model = trained(tmp_path)
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8))
    np.testing.assert_array_equal(_forward_on(model, x, threads), _forward_on(model, x, 1))


def test_tiles_and_planes_give_the_same_result_on_any_thread_count(tmp_path):
    """The micro-kernels' products and the depthwise planes run as one piece a thread, not one
    a chunk: on one thread the 40-channel conv is one piece of 40 rows, on two two of 20, and
    the products must still go to the micro-kernels on both (chosen by the chunks' rows)."""
    model = cnngraph.compile(build(tmp_path, Case(MOBILE, (4, 17, 17))), chunks=2)
    rng = np.random.default_rng(5)
    for value in model.params.values():
        value[:] = rng.standard_normal(value.shape) * 0.3
    x = rng.standard_normal((1, 4, 17, 17)).astype(np.float32)
    np.testing.assert_array_equal(_forward_on(model, x, 2), _forward_on(model, x, 1))


def test_reads_weights_edited_in_place(write_spec):
    """Edits of a pair folded for one sample too (refolded before the call) and of one not."""
    model = trained_to_fold(cnngraph.load(write_spec(FOLDING_SPEC)))
    assert [f.conv for f in model.program(False, small_batch=True).folds] == ["conv1"]
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 6))
    model.forward(x)
    model.params["batchnorm2.weight"][:] *= 2.0
    model.params["conv1.weight"][:] *= -1.0
    model.buffers["batchnorm1.running_mean"][:] += 0.5
    np.testing.assert_allclose(model.forward(x), torch_eval(model, x), **TOLERANCE["float64"])


def test_tiny_layers_hand_nothing_to_the_threads(tmp_path):
    """LeNet-sized layers at batch 1 run on the calling thread: a hand-off to a helper cost
    more than their kernels (the flat conv's one busy chunk, `chunks.run_samples`)."""
    case = Case("- conv: {out: 6, kernel: 5, padding: 2}\n- relu\n- avgpool: {kernel: 2}\n"
                "- conv: {out: 16, kernel: 5}\n- relu\n- flatten\n- dense: {out: 10}",
                (1, 28, 28))
    model = cnngraph.compile(build(tmp_path, case))
    assert "conv_flat_fwd_cpu" in model.program(False, small_batch=True).source
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    model.forward(x)
    runs = sum(pool.runs for pool in chunks._pools.values())
    model.forward(x)
    assert sum(pool.runs for pool in chunks._pools.values()) == runs


def test_winograd_only_on_maps_of_many_tiles_for_one_sample(tmp_path):
    net = build(tmp_path, Case("- conv: {out: 32, kernel: 3, padding: 1}\n"
                               "- conv: {out: 32, kernel: 3, padding: 1}", (32, 16, 16)))
    node = net.nodes[0]
    assert choose(node, training=False).algorithm == "winograd"
    assert choose(node, training=False, small_batch=True).algorithm == "winograd"  # 16 tiles
    small_maps = build(tmp_path, Case("- conv: {out: 32, kernel: 3, padding: 1}", (32, 8, 8)))
    assert choose(small_maps.nodes[0], training=False).algorithm == "winograd"
    assert choose(small_maps.nodes[0], training=False, small_batch=True).algorithm == "im2col"


def test_winograd_by_the_micro_kernels_matches_the_batch_and_pytorch(tmp_path):
    """One sample's 16 tiles (a 16x16 map): each GEMM one vector tile of positions wide, 40
    output channels cut into two chunks of 20 (tiles of 6 rows and the rest)."""
    model = cnngraph.compile(build(tmp_path, Case(
        "- conv: {out: 40, kernel: 3, padding: 1}\n- relu\n- conv: {out: 16, kernel: 3, "
        "padding: 1}", (16, 16, 16))), dtype="float64", chunks=2)
    rng = np.random.default_rng(4)
    for value in model.params.values():
        value[:] = rng.standard_normal(value.shape) * 0.2
    x = rng.standard_normal((3, 16, 16, 16))
    small, batch = model.program(False, small_batch=True), model.program(False)
    assert small.source.count("conv_winograd_fwd_cpu(") == 2 == batch.source.count(
        "conv_winograd_fwd_cpu(")
    alone = np.concatenate([model.forward(x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(alone, model.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(alone, torch_eval(model, x), **TOLERANCE["float64"])


def test_flat_conv_cut_by_output_channels_matches_the_batch_and_pytorch(tmp_path):
    """A flat-plane conv with work enough for two chunks (MobileNet's first conv, smaller):
    one sample's planes written once, each chunk its 16 output channels' rows."""
    model = cnngraph.compile(build(tmp_path, Case(
        "- conv: {out: 32, kernel: 3, stride: 2, padding: 1}\n- relu6\n- flatten\n"
        "- dense: {out: 5}", (3, 48, 48))), dtype="float64", chunks=2)
    rng = np.random.default_rng(5)
    model.params["conv1.bias"][:] = rng.standard_normal(32)
    x = rng.standard_normal((3, 3, 48, 48))
    assert "conv_flat_fwd_cpu" in model.program(False, small_batch=True).source
    alone = np.concatenate([model.forward(x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(alone, model.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(alone, torch_eval(model, x), **TOLERANCE["float64"])


def test_depthwise_3x3_along_planes_on_any_map_for_one_sample(tmp_path):
    """Rows rebuild their expanded weights on every call, which one sample does not share."""
    net = build(tmp_path, Case("- conv: {out: 16, kernel: 3, padding: 1, groups: 16}",
                               (16, 7, 7)))
    assert choose(net.nodes[0], training=False).algorithm == "depthwise_rows"
    assert choose(net.nodes[0], training=False, small_batch=True).algorithm == "depthwise_3x3"
