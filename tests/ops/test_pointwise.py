"""The pointwise ops (relu ... hardsigmoid): their cases (maps and vectors) against PyTorch
on the CPU (float64, with finite differences, and float32) and in the CUDA backend (float32 on
maps, float64 on vectors); and the shape and cost rules."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.ops.pointwise.cases import CASES

from helpers import DTYPES, check_op, full_ops, over, shape_as_torch


@DTYPES
@over(CASES)
def test_pointwise(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over([replace(case, input=(2, 3, 5)) if len(case.input) == 3 else case for case in CASES])
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda", "float32" if len(case.input) == 3 else "float64")


EDGES = [np.nan, -np.inf, np.inf, -0.0, 0.0, -1.5, 2.5, 1e-30, -1e-30, 7.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_leaky_relu_give_their_branch_forms_values_bit_for_bit(dtype):
    """relu and leaky_relu scale x by a factor chosen by its sign (a select, which vectorises):
    the same bits as `x if x > 0 else x * 0` (`else slope * x`) on every edge value, signed
    zeros and NaN included, as a pointwise kernel and fused into a producer (activate_all)."""
    from cnngraph.ops.pointwise.cpu import activate_all, pointwise_fwd_cpu
    from cnngraph.ops.pointwise.epilogue import CODES
    x = np.array(EDGES * 5, dtype)          # longer than a vector: the vectorised loop runs
    with np.errstate(invalid="ignore"):
        wants = {"relu": (np.where(x > 0, x, x * dtype(0)), 0.0),
                 "leaky_relu": (np.where(x > 0, x, dtype(0.25) * x), 0.25)}
    for name, (want, argument) in wants.items():
        y = np.full_like(x, 3.0)
        pointwise_fwd_cpu(name, x, y, argument)
        assert y.tobytes() == want.tobytes(), name
    fused = x.copy()
    activate_all(fused, CODES["relu"], 0.0)
    assert fused.tobytes() == wants["relu"][0].tobytes()


def test_relu_shape_matches_pytorch():
    assert shape_as_torch("relu", torch.nn.ReLU(), (3, 2, 2))


@pytest.mark.parametrize("name, in_shape, ops", [
    ("relu", (2, 3, 3), 18), ("sigmoid", (5,), 20), ("tanh", (5,), 25), ("leaky_relu", (5,), 10),
    ("identity", (5,), 0), ("relu6", (5,), 10), ("elu", (5,), 15), ("gelu", (5,), 25),
    ("silu", (5,), 25), ("swish", (5,), 25), ("hardswish", (5,), 25), ("hardsigmoid", (5,), 20)])
def test_full_policy_op_counts(name, in_shape, ops):
    assert full_ops(name, {}, in_shape) == ops


def test_gelu_tanh_form_counts_its_own_ops():
    assert full_ops("gelu", {"approximate": "tanh"}, (5,)) == 45


def test_swish_is_silu_under_its_own_name(write_spec):
    silu, swish = (cnngraph.compile(cnngraph.load(write_spec(
        f"version: 1\ninput: [3, 4, 5]\nlayers:\n- {name}\n", f"{name}.yaml")), seed=0)
        for name in ("silu", "swish"))
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    assert [node.op for node in swish.net.nodes] == ["swish"]
    np.testing.assert_array_equal(swish.forward(x), silu.forward(x))
