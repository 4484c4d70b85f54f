"""dropout: inverted, seeded, active only in training (its masks against a NumPy model of the
step), the CUDA backend's masks the CPU's; its PyTorch case (rate 0); and the shape and cost
rules."""
import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.ops.base import Case
from cnngraph.ops.dropout.cases import CASES

from helpers import DTYPES, build, check_cuda_against_cpu, check_op, full_ops, over, shape_as_torch


@DTYPES
@over(CASES)
def test_dropout(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_dropout_is_inverted_seeded_and_only_in_training(tmp_path):
    net = build(tmp_path, Case("- dropout: {rate: 0.5}", (4, 8, 8)))
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
    # A data-parallel worker's share of the batch: each sample keeps its mask.
    share = cnngraph.compile(net, dtype="float64", seed=3)
    share.loss_and_grad(x[1:], labels[1:], batch=2, first=1)
    assert np.array_equal(np.array(share.program(True).bound[1].dropout1__mask).reshape(1, -1),
                          mask[1:])


# the simulator runs the hash in NumPy scalars, which warn on the intended uint64 wraparound
@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_cuda_draws_the_cpu_masks(tmp_path):
    check_cuda_against_cpu(build(tmp_path, Case("- dropout: {rate: 0.4}", (3, 4, 5))))


def test_shape_matches_pytorch():
    assert shape_as_torch("dropout", torch.nn.Dropout(0.5), (10,))


def test_full_policy_op_count():
    assert full_ops("dropout", {}, (9,)) == 0
