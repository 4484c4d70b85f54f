"""batchnorm: its cases (maps and vectors, running statistics updated) against PyTorch on the
CPU (float64, with finite differences, and float32) and in the CUDA backend; a fused
activation; and its parameters, buffers and cost against PyTorch's."""
from dataclasses import replace

import pytest
import torch

from cnngraph.ops.base import Case
from cnngraph.ops.batchnorm.cases import CASES

from helpers import DTYPES, apply, check_op, full_ops, over

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
