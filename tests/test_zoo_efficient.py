"""One training step of each efficient net, compiled for the CPU at a reduced input size (the
kernels are what is tested here; the full-size counts are in test_reference*.py)."""
import numpy as np
import pytest

import cnngraph

from helpers import SPECS

# (spec, its parameters): MobileNet v1 at width 0.25 keeps its compile and step small
SPECS_AT_32 = [
    ("mobilenet_v1", {"width": 0.25}),
    ("mobilenet_v1_cifar", {"width": 0.25}),
    ("mobilenet_v2", None),
    ("shufflenet_v1_g3", None),
    ("shufflenet_v2", None),
    ("squeezenet1_1", None),
]


@pytest.mark.parametrize("name, params", SPECS_AT_32)
def test_one_training_step(name, params):
    net = cnngraph.load(SPECS / f"{name}.yaml", input_shape=(3, 32, 32), params=params)
    model = cnngraph.compile(net, dtype="float32", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, net.output_shape[0], 2)
    loss = model.loss_and_grad(x, labels)
    assert np.isfinite(loss)
    grads = model.host_grads()
    assert all(np.isfinite(grad).all() for grad in grads.values())
    # Every weight learns. Not every bias: a batch norm shift that reaches another batch norm
    # through linear layers only (ShuffleNet's depthwise BN, MobileNet v2's projection BN) is
    # cancelled by it, so its gradient is zero up to rounding (exactly zero here on the last
    # stages' 1x1 maps).
    for param, grad in grads.items():
        if param.endswith(".weight"):
            assert np.any(grad != 0), param


@pytest.mark.parametrize("name", ["fmnist-mobilenet", "fmnist-locally-connected"])
def test_fashion_mnist_examples_train_a_step(name):
    net = cnngraph.load(SPECS / f"{name}.yaml")
    model = cnngraph.compile(net, dtype="float32", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 4)
    first = model.loss_and_grad(x, labels)
    assert np.isfinite(first)
    for param, grad in model.host_grads().items():
        model.params[param][...] -= 0.05 * grad
    assert model.loss_and_grad(x, labels) < first     # a step down the gradient lowers it
