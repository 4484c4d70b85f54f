"""Frozen parameters (`Network.with_frozen`): a layer above one that trains still passes the
gradient on, but its backward kernels neither compute nor write the gradients of its frozen
parameters (`need_dw` false; `has_bias` or batchnorm's `need_db` false), and every other
gradient stays what it is unfrozen. One network holds every op with parameters between a conv
that trains below and a dense layer that trains above: conv, depthwise convs of stride 1 and 2,
batchnorm, prelu, locally_connected and dense; it runs on every CPU conv algorithm and in the
CUDA backend."""
import numpy as np
import pytest

import cnngraph
from cnngraph.ops.base import Case

from helpers import TOLERANCE, batch_for, build

NET = Case("""
- conv: {out: 3, kernel: 3, padding: 1}
- conv: {out: 4, kernel: 3, padding: 1}
- conv: {out: 4, kernel: 3, groups: 4, padding: 1}
- conv: {out: 4, kernel: 3, groups: 4, stride: 2, padding: 1}
- batchnorm
- prelu
- locally_connected: {out: 2, kernel: 2}
- flatten
- dense: {out: 5}
- dense: {out: 3}""", (2, 5, 6), head=False)
BELOW, ABOVE = "conv1", "dense2"

# Each CPU algorithm of the convs (conv1 and conv2 take the first, the depthwise conv3 and conv4
# the others), by choose.py's thresholds, as tests/ops/test_conv.py and test_conv_depthwise.py
# steer them.
ALGORITHMS = {
    ("flat", "depthwise"): {"FLAT_UP_TO": 1 << 20, "DEPTHWISE_ROWS_UP_TO": 0},
    ("im2col, columns kept", "depthwise_rows"): {"FLAT_UP_TO": -1},
    ("im2col, columns rebuilt", "depthwise_3x3", "depthwise_3x3_s2"): {
        "FLAT_UP_TO": -1, "SAVE_COLUMNS_UP_TO": 0, "DEPTHWISE_3X3_FROM": 0},
    ("winograd", "depthwise"): {"WINOGRAD_FROM": 1, "WINOGRAD_MAPS_FROM": 1,
                                "DEPTHWISE_ROWS_UP_TO": 0},
}
KERNELS = {"flat": "conv_flat_bwd_cpu(", "im2col, columns kept": "saved=True",
           "im2col, columns rebuilt": "saved=False", "winograd": "conv_winograd_bwd_cpu(",
           "depthwise": "conv_depthwise_bwd_cpu(", "depthwise_rows": "conv_depthwise_rows_bwd_cpu(",
           "depthwise_3x3": "conv_depthwise_3x3_bwd_cpu(",
           "depthwise_3x3_s2": "conv_depthwise_3x3_s2_bwd_cpu("}


@pytest.fixture(params=list(ALGORITHMS), ids=" + ".join)
def algorithms(request, monkeypatch):
    for name, value in ALGORITHMS[request.param].items():
        monkeypatch.setattr(f"cnngraph.ops.conv.choose.{name}", value)
    return request.param


def frozen_sets(net) -> dict[str, list[str]]:
    """What each run freezes: every weight but the top layer's (the bottom conv then trains its
    bias alone, and its backward computes nothing else), every bias but the top layer's, or
    every parameter of the layers in between (which then only pass the gradient on)."""
    params = [name for name in net.param_shapes() if not name.startswith(f"{ABOVE}.")]
    return {"weights": [name for name in params if name.endswith(".weight")],
            "biases": [name for name in params if name.endswith(".bias")],
            "between": [name for name in params if not name.startswith(f"{BELOW}.")]}


def step(net, backend: str, frozen: list[str], x, labels):
    """The model of the network with `frozen` frozen, after a training step that began with NaN
    in their gradients."""
    model = cnngraph.compile(net.with_frozen(frozen), backend=backend, dtype="float64")
    for name in frozen:
        model.backend.from_host(np.full(model.grads[name].shape, np.nan), model.grads[name])
    model.loss_and_grad(x, labels)
    return model


def check_frozen(net, backend: str) -> str:
    """A training step with each of `frozen_sets` frozen against one unfrozen: the frozen
    gradients still NaN, every other one as unfrozen. Returns the unfrozen step code."""
    x, labels = batch_for(net, 3)
    unfrozen = step(net, backend, [], x, labels)
    expected = unfrozen.host_grads()
    for what, frozen in frozen_sets(net).items():
        grads = step(net, backend, frozen, x, labels).host_grads()
        for name, grad in grads.items():
            if name in frozen:
                assert np.isnan(grad).all(), f"{what}: {name} was written"
            else:
                # not bitwise: depthwise_3x3.py's input and bias gradients round differently
                # without the weight's, which its one pass computes alongside
                np.testing.assert_allclose(grad, expected[name], **TOLERANCE["float64"],
                                           err_msg=f"{what}: {name}")
    return unfrozen.source()


def test_frozen_parameters_get_no_gradient(tmp_path, algorithms):
    source = check_frozen(build(tmp_path, NET), "cpu")
    for algorithm in algorithms:
        assert KERNELS[algorithm] in source


def test_cuda(tmp_path):
    check_frozen(build(tmp_path, NET), "cuda")
