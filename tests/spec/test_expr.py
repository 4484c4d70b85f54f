import re

import pytest

from cnngraph.spec.expr import ExprError, evaluate, is_expression


@pytest.mark.parametrize("text, env, expected", [
    ("$out", {"out": [3, 3]}, [3, 3]),
    ("$out * 4", {"out": 64}, 256),
    ("$c / 2", {"c": 64}, 32),
    ("$c / 3", {"c": 64}, 64 / 3),
    ("$blocks - 1", {"blocks": 1}, 0),
    ("($a + $b) // 2", {"a": 3, "b": 6}, 4),
    ("-$a ** 2", {"a": 3}, -9),
    ("max($c // $r, 1)", {"c": 4, "r": 16}, 1),
    ("$s if $paper else 1", {"s": 2, "paper": True}, 2),
    ("$s if $paper else 1", {"s": 2, "paper": False}, 1),
    ("$kind == '3x3'", {"kind": "3x3"}, True),
    ("$a > 1 and not $b", {"a": 2, "b": False}, True),
    ("1 < $a <= 3", {"a": 3}, True),
])
def test_evaluates(text, env, expected):
    assert evaluate(text, env) == expected


@pytest.mark.parametrize("text, message", [
    ("$nope", "unknown parameter `$nope`"),
    ("$a +", "not a valid expression"),
    ("$a / 0", "division by zero"),
    ("$a ** 100", "exponent too large"),
    ("$a * 10 ** 13", "too large"),
    ("__import__('os').system('true') + $a", "not allowed"),
    ("$a.real", "not allowed"),
    ("[$a][0]", "not allowed"),
    ("(lambda: 1)() + $a", "not allowed"),
    ("open('x') and $a", "unknown function"),
    ("$t + 1", "arithmetic needs numbers"),
])
def test_rejects(text, message):
    with pytest.raises(ExprError, match=re.escape(message)):
        evaluate(text, {"a": 2, "t": "x"})


def test_only_strings_with_dollar_are_expressions():
    assert is_expression("$a") and not is_expression("same") and not is_expression(3)
