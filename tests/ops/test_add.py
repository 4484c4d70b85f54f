"""add: its cases (a residual merge, fan-out, fused activations) against PyTorch on the CPU
(float64, with finite differences, and float32) and in the CUDA backend; the CPU kernels over
several blocks and chunks, with inputs whose gradients are not wanted; and the shape rule."""
import numpy as np
import pytest

from cnngraph.kernels.cpu.chunks import run_chunks
from cnngraph.ops.add.cases import CASES
from cnngraph.ops.add.cpu import BLOCK, _spread_gradient, _sum_activate
from cnngraph.ops.base import Case, ShapeError
from cnngraph.ops.pointwise.epilogue import CODES

from helpers import DTYPES, apply, check_op, over


@DTYPES
@over(CASES)
def test_add(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


def test_a_residual_merge_applies_its_relu_itself(tmp_path):
    model = check_op(tmp_path, Case("- parallel:\n    - [conv: {out: 3, kernel: 3, padding: 1}]"
                                    "\n    - []\n  merge: add\n- relu", (3, 5, 6)), fd=False)
    assert [node.op for node in model.program(True).net.nodes] == ["conv", "add", "flatten",
                                                                   "dense"]
    call = next(line for line in model.source().splitlines() if "add_fwd_cpu(" in line)
    assert f"act={CODES['relu']}," in call


@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_cpu_kernels_over_blocks_and_chunks(chunks):
    """Three inputs over several blocks and a partial one, cut into chunks: the forward sums
    and applies relu6; the backward writes only the wanted gradients, each dy through relu6's
    derivative (0 where the output is 0 or 6)."""
    rng = np.random.default_rng(0)
    size = 3 * BLOCK + 17
    parts = tuple(rng.standard_normal(size) * 4 for _ in range(3))
    out = np.empty(size)
    run_chunks(_sum_activate, chunks, out, parts, CODES["relu6"], 0.0)
    np.testing.assert_allclose(out, np.clip(sum(parts), 0, 6), rtol=1e-15)
    dy = rng.standard_normal(size)
    dxs = tuple(np.full(size, np.nan) for _ in range(3))
    run_chunks(_spread_gradient, chunks, dy, out, dxs, (False, True, True), CODES["relu6"], 0.0)
    want = np.where((out > 0) & (out < 6), dy, 0.0)
    assert np.isnan(dxs[0]).all()
    np.testing.assert_array_equal(dxs[1], want)
    np.testing.assert_array_equal(dxs[2], want)
    run_chunks(_spread_gradient, chunks, dy, dy, dxs, (True, False, True), 0, 0.0)
    np.testing.assert_array_equal(dxs[0], dy)     # no activation: dy itself
    np.testing.assert_array_equal(dxs[1], want)
    np.testing.assert_array_equal(dxs[2], dy)


def test_shape_rule():
    assert apply("add", {}, (4, 3, 3), (4, 3, 3), (4, 3, 3))[2] == (4, 3, 3)
    with pytest.raises(ShapeError):
        apply("add", {}, (4, 3, 3), (4, 3, 2))
