"""A small, safe evaluator for the expressions allowed in block bodies.

Inside a block, a string containing `$name` is an expression over the block's parameters:
`$out * 4`, `$blocks - 1`, `$stride if $variant == 'paper' else 1`, `max($c // 2, 8)`.
The string is parsed with Python's `ast` and only the node types below are evaluated; nothing is
ever passed to `eval`. A string that is exactly `$name` yields the parameter's value unchanged
(a list, a string, a boolean...).
"""
from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any

_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_WHOLE_REF = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*")
MAX_POWER = 64
MAX_INT = 10**12

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "int": int, "round": round}


class ExprError(ValueError):
    """An expression that cannot be evaluated; the message says why."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def evaluate(text: str, env: dict[str, Any]) -> Any:
    """Evaluate one expression string against the parameter values in `env`."""
    whole = _WHOLE_REF.fullmatch(text)
    if whole:
        return _lookup(whole.group(1), env)
    source = _REF.sub(r"\1", text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"`{text}` is not a valid expression") from None
    return _eval(tree.body, env, text)


def _lookup(name: str, env: dict[str, Any]) -> Any:
    if name not in env:
        known = ", ".join(f"${k}" for k in sorted(env)) or "none"
        raise ExprError(f"unknown parameter `${name}` (parameters: {known})")
    return env[name]


def _number(value: Any, text: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"`{text}`: arithmetic needs numbers, received {value!r}")
    return value


def _eval(node: ast.AST, env: dict[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return node.id == "true"
        return _lookup(node.id, env)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env, text)
        if isinstance(node.op, ast.Not):
            return not value
        value = _number(value, text)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
    if isinstance(node, ast.BinOp):
        left = _number(_eval(node.left, env, text), text)
        right = _number(_eval(node.right, env, text), text)
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise ExprError(f"`{text}`: division by zero")
            quotient = left / right
            # Channel counts divide evenly in practice; keep them integers when they do.
            return int(quotient) if quotient == int(quotient) else quotient
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExprError(f"`{text}`: operator not allowed")
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
            raise ExprError(f"`{text}`: division by zero")
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_POWER:
            raise ExprError(f"`{text}`: exponent too large")
        result = op(left, right)
        if abs(result) > MAX_INT:
            raise ExprError(f"`{text}`: result {result} is too large")
        return result
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env, text) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env, text)
        for op_node, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env, text)
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise ExprError(f"`{text}`: comparison not allowed")
            try:
                if not op(left, right):
                    return False
            except TypeError:
                raise ExprError(f"`{text}`: cannot compare {left!r} and {right!r}") from None
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, env, text) else node.orelse, env, text)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = _FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ExprError(f"`{text}`: unknown function `{node.func.id}` "
                            f"(allowed: {', '.join(sorted(_FUNCTIONS))})")
        args = [_number(_eval(a, env, text), text) for a in node.args]
        try:
            return fn(*args)
        except (TypeError, ValueError) as exc:
            raise ExprError(f"`{text}`: {exc}") from None
    raise ExprError(f"`{text}`: this kind of expression is not allowed "
                    "(use numbers, $parameters, + - * / // % **, comparisons, `x if c else y`, "
                    "min, max)")
