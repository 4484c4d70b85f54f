"""batchnorm's test cases: on maps and on vectors, with its own momentum and eps; a batch of 4
so that the running statistics' update sees a spread."""
from ..base import Case

CASES = [
    Case("- conv: {out: 4, kernel: 3}\n- batchnorm: {momentum: 0.3}", batch=4),
    Case("- dense: {out: 6}\n- batchnorm: {eps: 0.001}\n- dense: {out: 3}", (5,), head=False,
         batch=4),
]
