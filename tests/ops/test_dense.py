"""dense: its cases against PyTorch on the CPU (float64, with finite differences, and float32)
and in the CUDA backend (every other op's cases end in a dense layer too; tests/ops/test_conv.py
fuses activations into it); and its layout and cost against PyTorch's."""
import numpy as np
import torch

from cnngraph.kernels.cpu.chunks import run_chunks
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


def test_a_batch_smaller_than_the_chunks_is_cut_by_output_features(monkeypatch):
    """Batch-1 prediction cuts a large layer's output features into the chunks, not its
    samples (which would leave all the work to one chunk). Each output is the same dot product
    either way, so the bits match the one-chunk result, bias and fused relu included."""
    from cnngraph.ops.dense import cpu
    from cnngraph.ops.pointwise.epilogue import CODES
    kernels = []
    monkeypatch.setattr(cpu, "run_chunks", lambda kernel, chunks, *args: (
        kernels.append((kernel, chunks)), run_chunks(kernel, chunks, *args)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 500)).astype(np.float32)
    w = rng.standard_normal((601, 500)).astype(np.float32)
    b = rng.standard_normal(601).astype(np.float32)
    outputs = {}
    for chunks in (1, 2, 3):
        outputs[chunks] = np.full((1, 601), np.nan, np.float32)
        cpu.dense_fwd_cpu(x, w, b, outputs[chunks], True, CODES["relu"], 0.0, chunks)
    assert kernels == [(cpu._dense_fwd, 1), (cpu._dense_fwd_features, 2),
                       (cpu._dense_fwd_features, 3)]
    np.testing.assert_array_equal(outputs[2], outputs[1])
    np.testing.assert_array_equal(outputs[3], outputs[1])
    np.testing.assert_allclose(outputs[1], np.maximum(x @ w.T + b, 0), rtol=1e-5, atol=1e-4)
