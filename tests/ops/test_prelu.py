"""prelu: its cases against PyTorch on the CPU (float64, with finite differences, and float32)
and in the CUDA backend; the parameter's shape, start and weight-decay exemption; the cost;
bad arguments as located errors of `cnngraph check`."""
import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.ops.base import ShapeError
from cnngraph.ops.prelu.cases import CASES
from cnngraph.train.finetune import update_runs

from helpers import DTYPES, apply, assert_located_error, batch_for, build, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_prelu(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_first_layer_without_the_input_gradient(tmp_path, backend):
    """Training's usual step wants no gradient of the input: the backward pass of a first prelu
    then computes the slopes' gradient alone (`need_dx` false), and still as PyTorch does."""
    from cnngraph.tools.torch_reference import reference
    net = build(tmp_path, CASES[0])
    model = cnngraph.compile(net, backend=backend, dtype="float64")
    x, labels = batch_for(net, 3)
    expected = reference(model, x, labels)
    model.loss_and_grad(x, labels)
    for name, grad in model.host_grads().items():
        np.testing.assert_allclose(grad, expected["grads"][name], rtol=1e-9, atol=1e-11)
    assert model.input_grad is None


@pytest.mark.parametrize("args, in_shape, slopes", [
    ({}, (3, 5, 7), 3), ({}, (6,), 6), ({"shared": True}, (3, 5, 7), 1),
    ({"shared": True}, (6,), 1)])
def test_one_slope_per_channel_as_pytorch(args, in_shape, slopes):
    op, attrs, shape = apply("prelu", args, in_shape)
    module = torch.nn.PReLU(num_parameters=slopes)
    assert shape == tuple(module(torch.zeros(2, *in_shape)).shape[1:])
    assert op.params(attrs, [in_shape]) == {"weight": tuple(module.weight.shape)}


def test_needs_a_map_or_a_vector():
    with pytest.raises(ShapeError, match=r"expected \(C, H, W\) or \(features,\), received"):
        apply("prelu", {}, (4, 6))


def test_slopes_start_at_init(write_spec):
    net = cnngraph.load(write_spec("version: 1\ninput: [3, 5, 5]\nlayers:\n  - prelu\n"
                                   "  - prelu: {init: -0.1, shared: true}\n  - flatten\n"))
    params = cnngraph.compile(net).host_params()
    assert params["prelu1.weight"].tolist() == [0.25] * 3
    assert params["prelu2.weight"].tolist() == [np.float32(-0.1)]


def test_weight_decay_leaves_the_slopes_alone(write_spec):
    net = cnngraph.load(write_spec("version: 1\ninput: [3, 5, 5]\nlayers:\n"
                                   "  - conv: {out: 4, kernel: 3, bias: false}\n  - prelu\n"
                                   "  - flatten\n  - dense: {out: 2, bias: false}\n"))
    model = cnngraph.compile(net)
    ends, values, rates = update_runs(model, 0.5, decay_bn_bias=False)
    sizes = [value.size for value in model.params.values()]
    assert list(model.params) == ["conv1.weight", "prelu1.weight", "dense1.weight"]
    assert ends.tolist() == np.cumsum(sizes).tolist() and values.tolist() == [0.5, 0.0, 0.5]
    assert rates.tolist() == [1.0] * 3


def test_full_policy_op_count():
    assert full_ops("prelu", {}, (3, 5, 7)) == 2 * 3 * 5 * 7
    assert full_ops("prelu", {"shared": True}, (6,)) == 2 * 6


def test_receptive_field_is_unchanged(write_spec):
    net = cnngraph.load(write_spec("version: 1\ninput: [1, 8, 8]\nlayers:\n"
                                   "  - conv: {out: 2, kernel: 3, stride: 2}\n  - prelu\n"))
    conv, prelu = net.nodes
    assert (prelu.receptive_field, prelu.jump) == (conv.receptive_field, conv.jump)


@pytest.mark.parametrize("args, message, hint", [
    ("{init: small}", "expected a number, received 'small'", None),
    ("{init: [0.25]}", "expected a number, received [0.25]", None),
    ("{shared: 1}", "expected true or false, received 1", None),
    ("{slope: 0.1}", "unknown key `slope` of `prelu`", "allowed keys: `init`, `shared`"),
])
def test_check_prints_a_located_error(cli, write_spec, args, message, hint):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - prelu: {args}\n  - flatten\n")
    assert_located_error(cli("check", path), path, 5, message, hint)


def test_weight_gradient_over_several_chunks_is_exact_and_repeatable():
    """Large enough to split over every thread: each chunk's row of sums, added in row order,
    gives the sum over the batch and pixels, the same bits on every run."""
    import numba

    from cnngraph.kernels.cpu.chunks import MIN_PARALLEL
    from cnngraph.ops.prelu.cpu import prelu_bwd_cpu
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 3, 4, MIN_PARALLEL // 8 + 5))
    weight = rng.uniform(0, 0.5, 4)
    parts = np.zeros((numba.get_num_threads(), 4 + 16))
    results = []
    for _ in range(2):
        dx, weight_grad = np.empty_like(x), np.empty(4)
        prelu_bwd_cpu(x, dy, dx, weight, weight_grad, True, True, parts)
        results.append(weight_grad)
        np.testing.assert_allclose(weight_grad, (np.minimum(x, 0) * dy).sum(axis=(0, 2)),
                                   rtol=1e-12)
        np.testing.assert_array_equal(dx, np.where(x > 0, dy, weight[:, None] * dy))
    np.testing.assert_array_equal(*results)
