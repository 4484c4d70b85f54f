"""flatten's test cases: of maps, and of vectors (where it changes nothing)."""
from ..base import Case

CASES = [Case("- flatten\n- dense: {out: 3}", (2, 3, 4), head=False),
         Case("- flatten\n- dense: {out: 3}", (5,), head=False)]
