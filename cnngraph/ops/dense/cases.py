"""dense's test cases: with and without a bias, on vectors and on flattened maps (every other
op's cases end in a dense layer too)."""
from ..base import Case

CASES = [
    Case("- dense: {out: 6}\n- dense: {out: 3, bias: false}", (7,), head=False),
    Case("- flatten\n- dense: {out: 5, bias: false}", (2, 3, 3)),
]
