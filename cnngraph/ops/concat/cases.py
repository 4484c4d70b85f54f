"""concat's test cases: three branches of maps (one the identity), and two of vectors."""
from ..base import Case

CASES = [
    Case("- parallel:\n    - [conv: {out: 2, kernel: 1}]\n    - []\n"
         "    - [maxpool: {kernel: 3, stride: 1, padding: 1}]\n  merge: concat", (3, 5, 6)),
    Case("- parallel:\n    - [dense: {out: 3}]\n    - [dense: {out: 2}]\n  merge: concat\n"
         "- dense: {out: 3}", (4,), head=False),
]
