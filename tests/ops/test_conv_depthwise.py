"""conv's CPU depthwise kernels (groups == in == out): both algorithms, along planes and along
rows of whole samples, on every case that conv's cases do not reach with 3 channels: several
groups of channels and a partial last one, stride 2 (the planes' phases, the rows' kept grid
values), a 5-wide kernel (a pass of three taps and two single ones), fused activations; which
convs take them; and their gradients being the same bits whatever the number of chunks."""
import numpy as np
import pytest

from cnngraph.ops.base import Case
from cnngraph.ops.conv.cpu.depthwise import conv_depthwise_bwd_cpu, conv_depthwise_fwd_cpu
from cnngraph.ops.conv.cpu.depthwise_rows import (
    conv_depthwise_rows_bwd_cpu,
    conv_depthwise_rows_fwd_cpu,
)
from cnngraph.ops.conv.geometry import flat_size, on_input_grid, row_group

from helpers import DTYPES, check_op


@pytest.fixture(params=["depthwise", "depthwise_rows"])
def algorithm(request, monkeypatch):
    """Either depthwise algorithm for every map size (rows where the output lies on the
    input's grid)."""
    monkeypatch.setattr("cnngraph.ops.conv.choose.DEPTHWISE_ROWS_UP_TO",
                        0 if request.param == "depthwise" else 1 << 20)
    return request.param


CASES = [
    Case("- conv: {out: 40, kernel: 3, groups: 40, padding: 1}", (40, 7, 6), batch=2),
    Case("- conv: {out: 33, kernel: 3, groups: 33, stride: 2, padding: 1}", (33, 9, 8), batch=2),
    Case("- conv: {out: 5, kernel: 5, groups: 5, stride: [1, 2], padding: [2, 1, 2, 3]}",
         (5, 8, 11)),
    Case("- conv: {out: 4, kernel: 3, groups: 4, stride: 2, dilation: [1, 2], padding: 2}\n"
         "- relu", (4, 10, 9)),
    Case("- conv: {out: 34, kernel: 3, groups: 34, padding: 1, bias: false}\n- tanh",
         (34, 5, 4), batch=2),
]


@DTYPES
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_depthwise(tmp_path, case, dtype, algorithm):
    model = check_op(tmp_path, case, dtype=dtype)
    conv = next(node for node in model.train_net.nodes if node.op == "conv")
    on_grid = on_input_grid(conv.in_shapes[0][1:], conv.shape[1:], conv.attrs.stride)
    expected = algorithm if on_grid else "depthwise"
    assert f"conv_{expected}_fwd_cpu" in model.source()


@pytest.mark.parametrize("args, depthwise", [
    ("{out: 8, kernel: 3, groups: 8}", True),
    ("{out: 16, kernel: 3, groups: 8}", False),     # two outputs per input channel: a GEMM
    ("{out: 8, kernel: 1, groups: 2}", False)])
def test_which_convs_are_depthwise(tmp_path, args, depthwise):
    model = check_op(tmp_path, Case(f"- conv: {args}", (8, 5, 5), batch=2), fd=False)
    assert ("conv_depthwise" in model.source()) == depthwise


def _layer(rng, c, size, stride):
    out = (size + 2 - 3) // stride + 1
    return (rng.standard_normal((3, c, size, size)).astype(np.float32),
            rng.standard_normal((c, 1, 3, 3)).astype(np.float32),
            rng.standard_normal(c).astype(np.float32),
            rng.standard_normal((3, c, out, out)).astype(np.float32))


@pytest.mark.parametrize("rows", [False, True])
def test_gradients_are_the_same_bits_for_any_number_of_chunks(rows):
    """Backward chunks own whole channels (each summed in sample order), so the weight and bias
    gradients do not depend on how many threads ran (a chunk of no channels included), nor on
    how many channels a group of rows holds."""
    c, size, stride = 67, 9, 2
    x, w, b, dy = _layer(np.random.default_rng(0), c, size, stride)
    geometry = {"stride_h": stride, "stride_w": stride, "pad_top": 1, "pad_left": 1,
                "dilation_h": 1, "dilation_w": 1, "groups": c, "has_bias": True, "act": 0,
                "act_arg": 0.0}
    oh = dy.shape[2]
    results = []
    for threads in (1, 2, 5):
        raw = np.zeros((threads, 1, 1), np.float32)
        if rows:
            group = row_group(c, size * size, threads)
            geometry["per_group"] = group
            spaces = {"expanded": np.zeros((9, c * size * size), np.float32),
                      "grid": np.zeros((threads, group * size * size), np.float32)}
            parts = {"parts": np.zeros((threads, 10, group * size * size), np.float32)}
            raw = np.zeros((threads, 1), np.float32)
            forward, backward = conv_depthwise_rows_fwd_cpu, conv_depthwise_rows_bwd_cpu
        else:
            parts = {}
            a = type("A", (), {"kernel": (3, 3), "stride": (stride, stride),
                               "dilation": (1, 1), "padding": (1, 1, 1, 1)})
            plane_rows, wp, length = flat_size((size, size), (oh, oh), a)
            spaces = {"planes": np.zeros((threads, 2, stride * stride, plane_rows * wp),
                                         np.float32),
                      "flat_y": np.zeros((threads, length), np.float32)}
            geometry["plane_width"] = wp
            forward, backward = conv_depthwise_fwd_cpu, conv_depthwise_bwd_cpu
        y, dx = np.empty_like(dy), np.empty_like(x)
        dw, db = np.empty_like(w), np.empty_like(b)
        forward(x, w, b, y, **spaces, **geometry)
        backward(x, w, y, dy, dx, dw, db, **spaces, **parts, raw=raw, need_dx=True, **geometry)
        results.append((y, dx, dw, db))
    for other in results[1:]:
        for first, second in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(first, second)
