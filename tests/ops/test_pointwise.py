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
