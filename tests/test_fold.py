"""Batch norm folded into the conv before it, for inference: eval-mode logits equal PyTorch's
unfolded eval mode after training has moved the running statistics and the affine parameters,
with and without a conv bias."""
import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.passes.fold import fold_batchnorm
from cnngraph.tools.torch_reference import run

from helpers import FOLDING_SPEC, trained_to_fold


def test_both_pairs_fold(write_spec):
    folded, folds = fold_batchnorm(cnngraph.load(write_spec(FOLDING_SPEC)))
    assert [(f.conv, f.norm) for f in folds] == [("conv1", "batchnorm1"), ("conv2", "batchnorm2")]
    assert [n.op for n in folded.nodes] == ["conv", "relu", "conv", "flatten", "dense"]


def test_folded_inference_matches_pytorch_eval_after_training(write_spec):
    net = cnngraph.load(write_spec(FOLDING_SPEC))
    model = trained_to_fold(net)
    x = np.random.default_rng(1).standard_normal((3, 3, 6, 6))
    params = {k: torch.tensor(np.array(v)) for k, v in model.params.items()}
    buffers = {k: torch.tensor(np.array(v)) for k, v in model.buffers.items()}
    assert not np.allclose(buffers["batchnorm2.running_var"].numpy(), 1.0)
    expected = run(net, params, buffers, torch.tensor(x), training=False).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-10, atol=1e-12)


def test_inference_refolds_after_parameters_change_in_place(write_spec):
    net = cnngraph.load(write_spec(FOLDING_SPEC))
    model = trained_to_fold(net)
    x = np.random.default_rng(1).standard_normal((3, 3, 6, 6))
    model.forward(x)
    model.params["batchnorm2.weight"][:] *= 2.0       # no optimiser step: a direct edit
    model.buffers["batchnorm1.running_mean"][:] += 0.5
    params = {k: torch.tensor(np.array(v)) for k, v in model.params.items()}
    buffers = {k: torch.tensor(np.array(v)) for k, v in model.buffers.items()}
    expected = run(net, params, buffers, torch.tensor(x), training=False).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("conv_bias", [True, False])
def test_fold_kernel_rounds_the_float64_formula_once(conv_bias):
    from cnngraph.ops.batchnorm.cpu import fold_cpu
    from cnngraph.passes.fold import Fold
    rng = np.random.default_rng(0)
    f32 = np.float32
    params = {"c.weight": rng.standard_normal((6, 3, 3, 3)).astype(f32),
              "n.weight": rng.standard_normal(6).astype(f32),
              "n.bias": rng.standard_normal(6).astype(f32)}
    if conv_bias:
        params["c.bias"] = rng.standard_normal(6).astype(f32)
    buffers = {"n.running_mean": rng.standard_normal(6).astype(f32),
               "n.running_var": rng.uniform(0.1, 2.0, 6).astype(f32)}
    weight, bias = np.empty((6, 3, 3, 3), f32), np.empty(6, f32)
    fold_cpu(Fold("c", "n", 1e-5), params, buffers, weight, bias)
    scale = params["n.weight"] / np.sqrt(buffers["n.running_var"].astype(np.float64) + 1e-5)
    conv_b = params["c.bias"].astype(np.float64) if conv_bias else np.zeros(6)
    np.testing.assert_array_equal(
        weight, (params["c.weight"].astype(np.float64) * scale[:, None, None, None]).astype(f32))
    np.testing.assert_array_equal(
        bias, ((conv_b - buffers["n.running_mean"]) * scale + params["n.bias"]).astype(f32))
