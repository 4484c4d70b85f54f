"""Batch norm folded into the conv before it, for inference: eval-mode logits equal PyTorch's
unfolded eval mode after training has moved the running statistics and the affine parameters,
with and without a conv bias."""
import numpy as np
import torch
from torch_reference import run

import cnngraph
from cnngraph.fold import fold_batchnorm
from cnngraph.train.optim import SGD

SPEC = """version: 1
input: [3, 6, 6]
layers:
  - conv: {out: 4, kernel: 3, padding: 1, bias: false}
  - batchnorm: {momentum: 0.5}
  - relu
  - conv: {out: 5, kernel: 3}
  - batchnorm
  - flatten
  - dense: {out: 3}
"""


def trained(net, backend="cpu"):
    model = cnngraph.compile(net, backend=backend, dtype="float64", seed=2)
    opt = SGD(model, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(3):
        model.loss_and_grad(rng.standard_normal((4, 3, 6, 6)) * 2 + 1, rng.integers(0, 3, 4))
        opt.step()
    return model


def test_both_pairs_fold(write_spec):
    folded, folds = fold_batchnorm(cnngraph.load(write_spec(SPEC)))
    assert [(f.conv, f.norm) for f in folds] == [("conv1", "batchnorm1"), ("conv2", "batchnorm2")]
    assert [n.op for n in folded.nodes] == ["conv", "relu", "conv", "flatten", "dense"]


def test_folded_inference_matches_pytorch_eval_after_training(write_spec):
    net = cnngraph.load(write_spec(SPEC))
    model = trained(net)
    x = np.random.default_rng(1).standard_normal((3, 3, 6, 6))
    params = {k: torch.tensor(np.array(v)) for k, v in model.params.items()}
    buffers = {k: torch.tensor(np.array(v)) for k, v in model.buffers.items()}
    assert not np.allclose(buffers["batchnorm2.running_var"].numpy(), 1.0)
    expected = run(net, params, buffers, torch.tensor(x), training=False).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-10, atol=1e-12)
