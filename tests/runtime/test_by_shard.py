"""A training step computed shard by shard (the exact reduction: `compile(shards=)`): every op
runs once a shard on its slice of the batch, each shard's gradients land in a row of
`shard_grads`, and their exact sum is the batch's gradient."""
import numpy as np

import cnngraph

from helpers import ROOT


def test_each_shards_row_is_its_samples_gradient_and_they_sum_to_the_batchs():
    net = cnngraph.load(ROOT / "specs" / "lenet.yaml")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, *net.input_shape)).astype(np.float32)
    labels = rng.integers(0, 10, 10)
    shards = [(0, 3), (3, 3), (3, 7), (7, 10)]           # one of them empty
    model = cnngraph.compile(net, seed=1, chunks=2, shards=4)
    loss = model.loss_and_grad(x, labels, shards=shards)
    plain = cnngraph.compile(net, seed=1)
    assert np.isclose(loss, plain.loss_and_grad(x, labels), rtol=1e-6)
    for name, grad in plain.grads.items():
        np.testing.assert_allclose(model.grads[name], grad, rtol=1e-4, atol=1e-7)
    # a shard's row: what a step on its samples alone gives, bitwise (the same calls)
    for k, (lo, hi) in enumerate(shards):
        if hi == lo:
            continue
        alone = cnngraph.compile(net, seed=1, chunks=2, shards=1)
        alone.loss_and_grad(x[lo:hi], labels[lo:hi], batch=10, first=lo)
        assert np.array_equal(model.shard_grads[k], alone.shard_grads[0]), k
    source = model.source()
    assert "for k, (lo, hi) in enumerate(shards):" in source
    assert "weight_grad=g.conv1__weight[k]" in source
