"""Seeded initialisation: each scheme's distribution, streams per tensor, and the same start for
every dtype."""
import numpy as np
import pytest

import cnngraph
from cnngraph.ops.inits import INITS
from cnngraph.passes.init import initial_values

CONV_SPEC = """
version: 1
input: [64, 8, 8]
layers:
  - conv: {{out: 128, kernel: 3, padding: 1, init: {init}}}
  - batchnorm: {{}}
  - {activation}: {{}}
  - global_avgpool: {{}}
  - flatten: {{}}
  - dense: {{out: 10}}
"""


def values_of(write_spec, init="he_normal", activation="relu", seed=0):
    net = cnngraph.load(write_spec(CONV_SPEC.format(init=init, activation=activation)))
    return net, initial_values(net, seed)


@pytest.mark.parametrize("init", INITS)
def test_each_scheme_draws_its_distribution(write_spec, init):
    net, (params, _) = values_of(write_spec, init)
    w = params["conv1.weight"]
    assert w.dtype == np.float32 and w.shape == (128, 64, 3, 3)
    fan_in, fan_out = 64 * 9, 128 * 9
    expected_std = {"he_normal": np.sqrt(2 / fan_in),
                    "glorot_normal": np.sqrt(2 / (fan_in + fan_out)),
                    "normal": 0.01, "he_uniform": np.sqrt(6 / fan_in) / np.sqrt(3),
                    "glorot_uniform": np.sqrt(6 / (fan_in + fan_out)) / np.sqrt(3),
                    "zeros": 0.0}[init]
    assert w.std() == pytest.approx(expected_std, rel=0.02, abs=1e-12)
    assert abs(w.mean()) <= 0.01 * expected_std + 1e-12
    if init.endswith("uniform"):
        bound = expected_std * np.sqrt(3)
        assert -bound <= w.min() < -0.99 * bound and 0.99 * bound < w.max() < bound
    if init.endswith("normal") and init != "zeros":
        # a normal's 4th moment is 3 sigma^4; a uniform's 1.8 sigma^4
        assert np.mean(w.astype(np.float64) ** 4) / w.std() ** 4 == pytest.approx(3, rel=0.05)


def test_default_scheme_follows_the_activations(write_spec):
    net = cnngraph.load(write_spec(CONV_SPEC.replace(", init: {init}", "").format(
        activation="sigmoid")))
    w = initial_values(net, 0)[0]["conv1.weight"]
    assert w.std() == pytest.approx(np.sqrt(2 / (64 * 9 + 128 * 9)), rel=0.02)  # glorot uniform
    _, (params, _) = values_of(write_spec, "he_normal")
    assert params["conv1.weight"].std() == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.02)


def test_biases_norms_and_buffers_start_fixed(write_spec):
    _, (params, buffers) = values_of(write_spec)
    assert (params["conv1.bias"] == 0).all() and (params["dense1.bias"] == 0).all()
    assert (params["batchnorm1.weight"] == 1).all() and (params["batchnorm1.bias"] == 0).all()
    assert (buffers["batchnorm1.running_mean"] == 0).all()
    assert (buffers["batchnorm1.running_var"] == 1).all()
    assert all(v.dtype == np.float32 for v in [*params.values(), *buffers.values()])


def test_streams_are_seeded_per_tensor(write_spec):
    _, (first, _) = values_of(write_spec, seed=3)
    _, (again, _) = values_of(write_spec, seed=3)
    _, (other, _) = values_of(write_spec, seed=4)
    for name in ("conv1.weight", "dense1.weight"):
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.array_equal(first[name], other[name])
    # a layer added changes no other tensor's values (streams are keyed by name)
    bigger = cnngraph.load(write_spec(CONV_SPEC.format(init="he_normal", activation="relu")
                                      .replace("  - global_avgpool", "  - conv: {out: 128, "
                                               "kernel: 1}\n  - global_avgpool")))
    grown = initial_values(bigger, 3)[0]
    assert "conv2.weight" in grown
    for name in ("conv1.weight", "dense1.weight"):
        np.testing.assert_array_equal(grown[name], first[name])


def test_every_dtype_starts_from_the_same_values(write_spec):
    # float32 on the CPU draws into the model's own arrays; float64 converts initial_values'
    net, (params, buffers) = values_of(write_spec)
    for dtype in ("float32", "float64"):
        model = cnngraph.compile(net, dtype=dtype)
        assert model.params["conv1.weight"].dtype == np.dtype(dtype)
        for ours, theirs in ((model.params, params), (model.buffers, buffers)):
            assert ours.keys() == theirs.keys()
            for name, value in theirs.items():
                np.testing.assert_array_equal(ours[name], value, err_msg=name)
