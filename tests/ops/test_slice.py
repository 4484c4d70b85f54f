"""slice: its cases against PyTorch on the CPU (float64, with finite differences, and float32)
and in the CUDA backend; the CPU kernels cut into more chunks than rows; the shape rule against
`narrow`; empty and out-of-range ranges as located errors of `cnngraph check`."""
import numpy as np
import pytest
import torch

from cnngraph.ops.base import ShapeError
from cnngraph.ops.slice import cpu
from cnngraph.ops.slice.cases import CASES

from helpers import DTYPES, apply, assert_located_error, check_op, full_ops, over


@DTYPES
@over(CASES)
def test_slice(tmp_path, case, dtype):
    check_op(tmp_path, case, dtype=dtype)


@over(CASES)
def test_cuda(tmp_path, case):
    check_op(tmp_path, case, "cuda")


@pytest.mark.parametrize("chunks", [2, 5, 13])
def test_chunks_cut_rows_anywhere(monkeypatch, chunks):
    """Chunks that start and end inside a row, inside and around the range, against NumPy; the
    backward clearing the rest of dx, or leaving it to the input's other consumers."""
    monkeypatch.setattr(cpu, "split", lambda items: chunks)
    rng = np.random.default_rng(chunks)
    x = rng.standard_normal((2, 12))
    y = np.full((2, 5), np.nan)
    cpu.slice_fwd_cpu(x, y, 4)
    np.testing.assert_array_equal(y, x[:, 4:9])
    for clear, rest in ((True, 0.0), (False, np.nan)):
        dx = np.full_like(x, np.nan)
        cpu.slice_bwd_cpu(y, dx, 4, clear)
        expected = np.full_like(x, rest)
        expected[:, 4:9] = y
        np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("args, start, length", [
    ({"stop": 3}, 0, 3), ({"start": 2}, 2, 4), ({"start": -4, "stop": -1}, 2, 3),
    ({"start": 0, "stop": 6}, 0, 6)])
def test_shape_matches_narrow(args, start, length):
    expected = torch.zeros(1, 6, 5, 7).narrow(1, start, length).shape[1:]
    assert apply("slice", args, (6, 5, 7))[2] == tuple(expected)
    assert apply("slice", args, (6,))[2] == (length,)


def test_costs_nothing():
    assert full_ops("slice", {"start": 1}, (6, 5, 7)) == 0


@pytest.mark.parametrize("args, message", [
    ({"start": 5, "stop": 3}, "`slice` start=5 stop=3 selects no channel"),
    ({"start": 6}, "`slice` start=6 selects no channel"),
    ({"start": -2, "stop": 2}, "`slice` start=-2 stop=2 selects no channel"),
    ({"stop": 7}, "`slice` stop=7 is outside the 6 input channels"),
    ({"start": -7}, "`slice` start=-7 is outside the 6 input channels")])
def test_bad_ranges(args, message):
    with pytest.raises(ShapeError, match=message) as e:
        apply("slice", args, (6, 5, 7))
    assert e.value.hint


@pytest.mark.parametrize("args, message, hint", [
    ("{start: 5, stop: 3}", "`slice` start=5 stop=3 selects no channel", "[5, 3)"),
    ("{start: -2, stop: 1}", "`slice` start=-2 stop=1 selects no channel", "[4, 1)"),
    ("{stop: 10}", "`slice` stop=10 is outside the 6 input channels", "[-6, 6]"),
    ("{start: -9}", "`slice` start=-9 is outside the 6 input channels", "[-6, 6]"),
    ("{start: 1.5}", "received 1.5", None),
])
def test_check_prints_a_located_error(cli, write_spec, args, message, hint):
    path = write_spec("version: 1\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 3}\n"
                      f"  - slice: {args}\n  - flatten\n")
    assert_located_error(cli("check", path), path, 5, message, hint)


def test_vector_ranges_count_features(cli, write_spec):
    path = write_spec("version: 1\ninput: [8]\nlayers:\n  - dense: {out: 4}\n"
                      "  - slice: {start: 4}\n")
    assert_located_error(cli("check", path), path, 5, "`slice` start=4 selects no channel",
                         "of the 4 input features")
