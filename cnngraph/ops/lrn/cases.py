"""lrn's test cases: odd and even window sizes over few channels."""
from ..base import Case

CASES = [
    Case("- lrn: {size: 3, alpha: 0.01, beta: 0.75, k: 2}", (6, 3, 4)),
    Case("- lrn: {size: 4, alpha: 0.1, beta: 0.5, k: 1}", (5, 2, 3)),
]
