"""dense: its cases against PyTorch on the CPU (float64, with finite differences, and float32)
and in the CUDA backend (every other op's cases end in a dense layer too; tests/ops/test_conv.py
fuses activations into it); and its layout and cost against PyTorch's."""
import torch

from cnngraph.ops.dense.cases import CASES

from helpers import DTYPES, apply, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_dense(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_dense_layout_matches_pytorch():
    op, attrs, shape = apply("dense", {"out": 7}, (12,))
    m = torch.nn.Linear(12, 7)
    assert op.params(attrs, [(12,)]) == {k: tuple(v.shape) for k, v in m.named_parameters()}
    assert op.cost(attrs, [(12,)], shape).macs == 84


def test_full_policy_op_count():
    assert full_ops("dense", {"out": 3}, (4,)) == 3
