"""conv's test cases: shapes, strides, paddings (asymmetric and `same`), dilations and groups,
with odd sizes; the last one's weight gradient spans several 32 x 32 tiles. The depthwise ones
(groups == in == out: 3 channels, as the CUDA test's input keeps) take the CPU's direct
depthwise kernels (choose.py says which: cpu/depthwise.py, depthwise_rows.py,
depthwise_3x3.py)."""
from ..base import Case

CASES = [Case(f"- conv: {args}") for args in (
    "{out: 4, kernel: 3}",
    "{out: 4, kernel: 3, padding: 1, bias: false}",
    "{out: 4, kernel: 3, padding: 1}",
    "{out: 5, kernel: [5, 2], padding: [2, 0, 1, 3]}",
    "{out: 3, kernel: [2, 4], padding: [0, 1, 2, 0]}",
    "{out: 6, kernel: [2, 3], dilation: [1, 2], groups: 3, padding: [1, 0, 0, 2]}",
    "{out: 4, kernel: 1, padding: 1}",
    "{out: 5, kernel: [3, 2], stride: [2, 1], padding: [1, 0, 2, 1]}",
    "{out: 6, kernel: 3, dilation: 2, padding: 2}",
    "{out: 6, kernel: 3, groups: 3, padding: 1}",
    "{out: 3, kernel: 3, groups: 3, stride: 2}",
    "{out: 4, kernel: 1}",
    "{out: 4, kernel: 1, stride: 2}",
    "{out: 4, kernel: 4, stride: 3, padding: same}",
    "{out: 2, kernel: 5, stride: 2, padding: 2, dilation: 2}",
    "{out: 40, kernel: [5, 3], padding: 1}",
    "{out: 3, kernel: 3, groups: 3, padding: 1}",
    "{out: 3, kernel: 3, groups: 3, stride: 2, padding: 1, bias: false}",
    "{out: 3, kernel: [3, 5], groups: 3, dilation: [2, 1], padding: [2, 2, 1, 3]}",
    "{out: 3, kernel: [4, 3], groups: 3, stride: [2, 1], padding: [1, 2, 0, 1], dilation: 2}",
)] + [Case("- conv: {out: 3, kernel: 3, groups: 3, padding: 1}\n- relu6", (3, 11, 10)),
      Case("- conv: {out: 3, kernel: 3, groups: 3, stride: 2, padding: 1}\n- sigmoid")]
