"""The pooling ops' test cases: every op, with strides, paddings, ceil mode and (avgpool)
whether padding counts; and average windows that tile their input, on rows short and long
(cpu.py takes them one window at a time on rows of at most SHORT_ROWS_UP_TO values)."""
from ..base import Case

CASES = [Case(f"- {layer}", (3, 9, 10)) for layer in (
    "maxpool: {kernel: 2}", "maxpool: {kernel: 3, stride: 2, padding: 1}",
    "maxpool: {kernel: 3, stride: 2, ceil_mode: true}", "maxpool: {kernel: [2, 3], stride: 1}",
    "maxpool: {kernel: 3, stride: 1, padding: 1}", "maxpool: {kernel: [3, 2], stride: 1}",
    "avgpool: {kernel: 2}", "avgpool: {kernel: 3, stride: 2}",
    "avgpool: {kernel: 3, stride: 2, padding: 1}",
    "avgpool: {kernel: [3, 2], stride: 1}",
    "avgpool: {kernel: 3, stride: 2, padding: 1, count_include_pad: false}",
    "avgpool: {kernel: 3, stride: 2, ceil_mode: true}",
    "avgpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}",
    "global_avgpool", "global_maxpool",
)]
CASES += [Case("- avgpool: {kernel: 2}", (3, 8, 10)),
          Case("- avgpool: {kernel: [3, 2]}", (2, 9, 6)),
          Case("- avgpool: {kernel: 2}", (2, 4, 36))]
