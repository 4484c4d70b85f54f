"""batchnorm: its cases (maps and vectors, running statistics updated) against PyTorch on the
CPU (float64, with finite differences, and float32) and in the CUDA backend; a fused
activation; frozen statistics (fine-tuning's eval-mode batch norm) against PyTorch's eval-mode
batch norm; and its parameters, buffers and cost against PyTorch's."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import cnngraph
from cnngraph.ops.base import Case
from cnngraph.ops.batchnorm.cases import CASES

from helpers import DTYPES, TOLERANCE, apply, batch_for, build, check_op, full_ops, over

MAPS, VECTORS = CASES


@DTYPES
@over(CASES)
def test_batchnorm_updates_running_statistics(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@pytest.mark.parametrize("case, dtype", [(replace(MAPS, input=(2, 6, 5)), "float64"),
                                         (VECTORS, "float32")], ids=["maps", "vectors"])
def test_cuda(tmp_path, case, dtype):
    check_op(tmp_path, case, "cuda", dtype)


@DTYPES
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_batchnorm_with_a_fused_activation(tmp_path, activation, dtype):
    """The activation runs in batch norm's output loop (maps and vectors), its backward before
    batch norm's; results as PyTorch's unfused layers."""
    model = check_op(tmp_path, Case(f"- conv: {{out: 4, kernel: 3}}\n- batchnorm\n"
                                    f"- {activation}", batch=4), dtype=dtype)
    assert [n.activation for n in model.train_net.nodes if n.op == "batchnorm"] == \
        [(activation, 0.0)]
    check_op(tmp_path, Case(f"- dense: {{out: 6}}\n- batchnorm\n- {activation}\n"
                            "- dense: {out: 3}", (5,), head=False, batch=4), dtype=dtype)


@pytest.mark.parametrize("activation", ["relu", "tanh", None])
def test_batchnorm_on_rows_longer_than_a_piece(tmp_path, activation):
    """The CPU kernels take rows of C·L values a piece (cpu.PIECE) at a time, and cut the batch
    into chunks by flat position: 5 channels of 15x15 (1,125 values a sample) in a batch of 3
    split pieces inside rows and chunks inside samples."""
    layers = "- conv: {out: 5, kernel: 3}\n- batchnorm: {momentum: 0.3}" \
        + (f"\n- {activation}" if activation else "")
    check_op(tmp_path, Case(layers, (2, 17, 17), batch=3), dtype="float64")


STATISTICS = ("batchnorm1.running_mean", "batchnorm1.running_var")


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("parameters", [(), ("batchnorm1.weight", "batchnorm1.bias")],
                         ids=["statistics", "everything"])
def test_frozen_statistics_train_the_eval_mode_map(tmp_path, activation, backend, parameters):
    """With its running statistics frozen (`train.bn: frozen`), a training step normalises with
    them, as evaluation does, and leaves them as they were to the bit; the gradients of the
    input (batch norm comes first), of its weight and bias and of the dense layer above are
    PyTorch's through an eval-mode batch norm (a fused ReLU's derivative taken first). With its
    weight and bias frozen too, dx needs no sums over the batch, and their gradients are not
    written."""
    layers = "- batchnorm: {momentum: 0.3}" + (f"\n- {activation}" if activation else "")
    net = build(tmp_path, Case(layers, (3, 4, 4)))
    rng = np.random.default_rng(1)
    values = {"batchnorm1.weight": rng.uniform(0.5, 1.5, 3),
              "batchnorm1.bias": rng.standard_normal(3),
              "batchnorm1.running_mean": rng.standard_normal(3),
              "batchnorm1.running_var": rng.uniform(0.5, 2.0, 3)}
    models = []
    for frozen in ((), STATISTICS + parameters):
        model = cnngraph.compile(net.with_frozen(frozen), backend=backend, dtype="float64")
        for name, value in values.items():
            model.backend.from_host(value, {**model.params, **model.buffers}[name])
        for name in parameters:
            model.backend.from_host(np.full(3, np.nan), model.grads[name])
        models.append(model)
    unfrozen, model = models
    x, labels = batch_for(net, 4)
    loss = model.loss_and_grad(x, labels, input_grad=True)
    assert [n.activation for n in model.train_net.nodes if n.op == "batchnorm"] == \
        [(activation, 0.0) if activation else None]
    for name in STATISTICS:
        np.testing.assert_array_equal(model.host_buffers()[name], values[name], err_msg=name)

    params = {name: torch.tensor(value, requires_grad=True)
              for name, value in model.host_params().items()}
    inputs = torch.tensor(x, requires_grad=True)
    normalised = torch.nn.functional.batch_norm(
        inputs, torch.tensor(values["batchnorm1.running_mean"]),
        torch.tensor(values["batchnorm1.running_var"]), params["batchnorm1.weight"],
        params["batchnorm1.bias"], training=False, eps=1e-5)
    if activation:
        normalised = torch.relu(normalised)
    logits = torch.nn.functional.linear(normalised.flatten(1), params["dense1.weight"],
                                        params["dense1.bias"])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    expected.backward()

    tol = TOLERANCE["float64"]
    np.testing.assert_allclose(model.last_logits, unfrozen.forward(x), **tol)
    np.testing.assert_allclose(model.last_logits, logits.detach().numpy(), **tol)
    np.testing.assert_allclose(loss, expected.item(), **tol)
    np.testing.assert_allclose(model.input_grad, inputs.grad.numpy(), **tol, err_msg="input")
    for name, grad in model.host_grads().items():
        if name in parameters:
            assert np.isnan(grad).all(), name
        else:
            np.testing.assert_allclose(grad, params[name].grad.numpy(), **tol, err_msg=name)


@pytest.mark.parametrize("in_shape, module", [
    ((6, 4, 4), lambda: torch.nn.BatchNorm2d(6)), ((9,), lambda: torch.nn.BatchNorm1d(9))])
def test_batchnorm_params_and_buffers_match_pytorch(in_shape, module):
    op, attrs, shape = apply("batchnorm", {}, in_shape)
    m = module()
    assert shape == in_shape
    assert op.params(attrs, [in_shape]) == {k: tuple(v.shape) for k, v in m.named_parameters()}
    assert op.buffers(attrs, [in_shape]) == {k: tuple(v.shape) for k, v in m.named_buffers()
                                             if k != "num_batches_tracked"}
    assert (attrs.eps, attrs.momentum) == (m.eps, m.momentum)


def test_full_policy_op_count():
    assert full_ops("batchnorm", {}, (2, 3, 3)) == 36
