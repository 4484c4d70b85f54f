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


def _views(shapes: dict, rng) -> dict:
    """Random float32 views of one flat array, as a model keeps its values."""
    flat = rng.standard_normal(3 + sum(int(np.prod(s)) for s in shapes.values()))
    flat = flat.astype(np.float32)
    views, at = {}, 3                  # (not from the start of the flat array)
    for name, shape in shapes.items():
        views[name] = flat[at:at + int(np.prod(shape))].reshape(shape)
        at += int(np.prod(shape))
    return views


@pytest.mark.parametrize("chunks", [1, 3])
def test_fold_kernel_rounds_the_float64_formula_once(chunks):
    """Two folds in one call, a conv with a bias and one without, their channels cut into
    chunks across the folds: each value the float64 formula rounded once, whatever the cut."""
    from cnngraph.kernels.cpu.chunks import run_chunks
    from cnngraph.ops.batchnorm.cpu import _fold, fold_cpu, fold_table
    from cnngraph.passes.fold import Fold
    rng = np.random.default_rng(0)
    params = _views({"c.weight": (6, 3, 3, 3), "c.bias": (6,), "n.weight": (6,), "n.bias": (6,),
                     "d.weight": (4, 6, 1, 1), "m.weight": (4,), "m.bias": (4,)}, rng)
    buffers = _views({"n.running_mean": (6,), "n.running_var": (6,), "m.running_mean": (4,),
                      "m.running_var": (4,)}, rng)
    for name in ("n.running_var", "m.running_var"):
        buffers[name][:] = rng.uniform(0.1, 2.0, buffers[name].size)
    folded = _views({"n.weight": (6, 3, 3, 3), "n.bias": (6,), "m.weight": (4, 6, 1, 1),
                     "m.bias": (4,)}, rng)
    folds = (Fold("c", "n", 1e-5), Fold("d", "m", 1e-3))
    table = fold_table(folds, params, buffers, folded)
    if chunks == 1:
        fold_cpu(*table)
    else:
        run_chunks(_fold, chunks, *table)
    for fold, conv_b in ((folds[0], params["c.bias"].astype(np.float64)), (folds[1], 0.0)):
        scale = params[f"{fold.norm}.weight"] / np.sqrt(
            buffers[f"{fold.norm}.running_var"].astype(np.float64) + fold.eps)
        w = params[f"{fold.conv}.weight"].astype(np.float64)
        np.testing.assert_array_equal(folded[f"{fold.norm}.weight"], (
            w * scale[:, None, None, None]).astype(np.float32))
        np.testing.assert_array_equal(folded[f"{fold.norm}.bias"], (
            (conv_b - buffers[f"{fold.norm}.running_mean"]) * scale
            + params[f"{fold.norm}.bias"]).astype(np.float32))

