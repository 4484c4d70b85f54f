"""conv's CPU depthwise kernels (groups == in == out): the four algorithms, along padded
planes, along rows of whole samples, a 3x3 pass along each plane, and its stride-2 pass along
each plane's even and odd columns, on every case that conv's cases do not reach with 3
channels: several groups of channels and a partial last one, stride 2 (the planes' phases, the
kept grid values, the split columns on even and odd heights), a 5-wide kernel (a pass of three
taps and two single ones), fused activations; which convs take them; and their gradients being
the same bits whatever the number of chunks."""
import numpy as np
import pytest
import torch

from cnngraph.ops.base import Case
from cnngraph.ops.conv.cpu.depthwise import conv_depthwise_bwd_cpu, conv_depthwise_fwd_cpu
from cnngraph.ops.conv.cpu.depthwise_3x3 import (
    STRIDED_ROWS_FROM,
    conv_depthwise_3x3_bwd_cpu,
    conv_depthwise_3x3_fwd_cpu,
)
from cnngraph.ops.conv.cpu.depthwise_3x3_s2 import (
    conv_depthwise_3x3_s2_bwd_cpu,
    conv_depthwise_3x3_s2_fwd_cpu,
)
from cnngraph.ops.conv.cpu.depthwise_rows import (
    conv_depthwise_rows_bwd_cpu,
    conv_depthwise_rows_fwd_cpu,
)
from cnngraph.ops.conv.geometry import flat_size, on_input_grid, row_group

from helpers import DTYPES, check_op


@pytest.fixture(params=["depthwise", "depthwise_rows", "depthwise_3x3"])
def algorithm(request, monkeypatch):
    """Each depthwise algorithm for every map size, where it applies (see `expected`)."""
    rows, three = {"depthwise": (0, 1 << 20), "depthwise_rows": (1 << 20, 1 << 20),
                   "depthwise_3x3": (0, 0)}[request.param]
    monkeypatch.setattr("cnngraph.ops.conv.choose.DEPTHWISE_ROWS_UP_TO", rows)
    monkeypatch.setattr("cnngraph.ops.conv.choose.DEPTHWISE_3X3_FROM", three)
    return request.param


def expected(algorithm: str, conv) -> str:
    """The algorithm a conv takes when `algorithm` is forced: rows and 3x3 need the output on
    the input's grid, 3x3 also a 3x3 kernel padded by 1, and it takes the split columns for
    stride 2 on an even width; planes take the others."""
    a = conv.attrs
    if not on_input_grid(conv.in_shapes[0][1:], conv.shape[1:], a.stride):
        return "depthwise"
    if algorithm == "depthwise_3x3" and not (a.kernel == (3, 3) and a.dilation == (1, 1)
                                             and tuple(a.padding) == (1, 1, 1, 1)):
        return "depthwise"
    if algorithm == "depthwise_3x3" and a.stride == (2, 2) and conv.in_shapes[0][2] % 2 == 0:
        return "depthwise_3x3_s2"
    return algorithm


CASES = [
    Case("- conv: {out: 40, kernel: 3, groups: 40, padding: 1}", (40, 7, 6), batch=2),
    Case("- conv: {out: 33, kernel: 3, groups: 33, stride: 2, padding: 1}", (33, 9, 8), batch=2),
    Case("- conv: {out: 5, kernel: 5, groups: 5, stride: [1, 2], padding: [2, 1, 2, 3]}",
         (5, 8, 11)),
    Case("- conv: {out: 4, kernel: 3, groups: 4, stride: 2, dilation: [1, 2], padding: 2}\n"
         "- relu", (4, 10, 9)),
    Case("- conv: {out: 34, kernel: 3, groups: 34, padding: 1, bias: false}\n- tanh",
         (34, 5, 4), batch=2),
    Case("- conv: {out: 6, kernel: 3, groups: 6, stride: 2, padding: 1}\n- relu", (6, 7, 5),
         batch=3),
    Case("- conv: {out: 7, kernel: 3, groups: 7, stride: 2, padding: 1, bias: false}\n- relu6",
         (7, 9, 10), batch=2),
    Case("- conv: {out: 3, kernel: 3, groups: 3, stride: 2, padding: 1}\n- tanh", (3, 6, 2)),
]


@DTYPES
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_depthwise(tmp_path, case, dtype, algorithm):
    model = check_op(tmp_path, case, dtype=dtype)
    conv = next(node for node in model.train_net.nodes if node.op == "conv")
    assert f"conv_{expected(algorithm, conv)}_fwd_cpu" in model.source()


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


@pytest.mark.parametrize("algorithm", ["planes", "rows", "3x3", "3x3 stride 2"])
def test_gradients_are_the_same_bits_for_any_number_of_chunks(algorithm):
    """Backward chunks own whole channels (each summed in sample order), so the weight and bias
    gradients do not depend on how many threads ran (a chunk of no channels included), nor on
    how many channels a group of rows holds."""
    c, size, stride = 67, 10 if algorithm == "3x3 stride 2" else 9, 2
    x, w, b, dy = _layer(np.random.default_rng(0), c, size, stride)
    geometry = {"stride_h": stride, "stride_w": stride, "pad_top": 1, "pad_left": 1,
                "dilation_h": 1, "dilation_w": 1, "groups": c, "has_bias": True, "act": 0,
                "act_arg": 0.0}
    oh = dy.shape[2]
    results = []
    for threads in (1, 2, 5):
        if algorithm == "3x3 stride 2":
            length = (size + 2) * (size // 2) + 2
            spaces = {"columns": np.zeros((threads, 3, length), np.float32),
                      "flat": np.zeros((threads, length), np.float32)}
            backward_only = {}
            forward, backward = conv_depthwise_3x3_s2_fwd_cpu, conv_depthwise_3x3_s2_bwd_cpu
        elif algorithm == "3x3":
            spaces = {"grid": np.zeros((threads, size * size), np.float32),
                      "padded": np.zeros((threads, (size + 2) * size + 2), np.float32),
                      "masks": np.zeros((threads, 2, size * size), np.float32)}
            backward_only = {}
            forward, backward = conv_depthwise_3x3_fwd_cpu, conv_depthwise_3x3_bwd_cpu
        elif algorithm == "rows":
            group = row_group(c, size * size, threads)
            geometry["per_group"] = group
            spaces = {"expanded": np.zeros((9, c * size * size), np.float32),
                      "grid": np.zeros((threads, group * size * size), np.float32)}
            backward_only = {"parts": np.zeros((threads, 10, group * size * size), np.float32),
                             "raw": np.zeros((threads, 1), np.float32)}
            forward, backward = conv_depthwise_rows_fwd_cpu, conv_depthwise_rows_bwd_cpu
        else:
            a = type("A", (), {"kernel": (3, 3), "stride": (stride, stride),
                               "dilation": (1, 1), "padding": (1, 1, 1, 1)})
            plane_rows, wp, length = flat_size((size, size), (oh, oh), a)
            spaces = {"planes": np.zeros((threads, 2, stride * stride, plane_rows * wp),
                                         np.float32),
                      "flat_y": np.zeros((threads, length), np.float32)}
            geometry["plane_width"] = wp
            backward_only = {"raw": np.zeros((threads, 1, 1), np.float32)}
            forward, backward = conv_depthwise_fwd_cpu, conv_depthwise_bwd_cpu
        y, dx = np.empty_like(dy), np.empty_like(x)
        dw, db = np.empty_like(w), np.empty_like(b)
        forward(x, w, b, y, **spaces, **geometry)
        backward(x, w, y, dy, dx, dw, db, **spaces, **backward_only, need_dx=True, need_dw=True,
                 **geometry)
        results.append((y, dx, dw, db))
    for other in results[1:]:
        for first, second in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("stride", [(2, 2), (2, 1), (3, 2)])
def test_3x3_strided_on_wide_planes_computes_the_kept_rows(stride):
    """On planes of STRIDED_ROWS_FROM columns and more the forward pass computes only the grid's
    rows that a strided conv keeps, each its own run (odd heights: a last row kept alone)."""
    c, h, width = 5, 11, STRIDED_ROWS_FROM + 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, c, h, width)).astype(np.float32)
    w = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b),
                                      stride=stride, padding=1, groups=c).clamp(0, 6).numpy()
    y = np.full(want.shape, np.nan, np.float32)
    conv_depthwise_3x3_fwd_cpu(
        x, w, b, y, grid=np.zeros((2, h * width), np.float32),
        padded=np.zeros((2, (h + 2) * width + 2), np.float32),
        masks=np.zeros((2, 2, h * width), np.float32), stride_h=stride[0], stride_w=stride[1],
        pad_top=1, pad_left=1, dilation_h=1, dilation_w=1, groups=c, has_bias=True, act=6,
        act_arg=0.0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
