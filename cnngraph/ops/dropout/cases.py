"""dropout's test case for the PyTorch comparison: at rate 0 only, since PyTorch cannot draw
cnngraph's masks (tests/ops/test_dropout.py tests the masks themselves, and that the CUDA
backend draws the CPU's)."""
from ..base import Case

CASES = [Case("- dropout: {rate: 0.0}", (3, 4, 5))]
