"""JSON Schema (Draft 2020-12) for the spec document, and readable, located schema errors.

The document schema checks the top level and the shape of block definitions. Layers are checked
one at a time against their own op's fragment (dispatching on the op name), which gives precise
messages instead of the vague ones of one large `oneOf`.
"""
from __future__ import annotations

from typing import Any

import jsonschema

from ..errors import Location, Problem, SpecPath
from ..ops import nearest
from ..ops.window import POSITIVE
from .yamlload import LDict

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"

INPUT = {
    "description": "a shape [C, H, W] (or [features]) of positive integers, without the batch",
    "anyOf": [
        {"type": "array", "items": POSITIVE, "minItems": 3, "maxItems": 3},
        {"type": "array", "items": POSITIVE, "minItems": 1, "maxItems": 1},
    ],
}
INCLUDE = {
    "description": "a file name or a list of file names, relative to this spec",
    "anyOf": [{"type": "string", "minLength": 1},
              {"type": "array", "items": {"type": "string", "minLength": 1}}],
}
BLOCK = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "params": {"type": "object", "propertyNames": {"pattern": IDENTIFIER}},
        "layers": {"type": "array"},
    },
    "required": ["layers"],
    "additionalProperties": False,
}
BLOCKS = {"type": "object", "propertyNames": {"pattern": IDENTIFIER},
          "additionalProperties": BLOCK}

DOCUMENT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "version": {"const": 1},
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "input": INPUT,
        "include": INCLUDE,
        "params": {"type": "object", "propertyNames": {"pattern": IDENTIFIER}},
        "blocks": BLOCKS,
        "layers": {"type": "array", "minItems": 1},
        "train": {"type": "object"},
    },
    "required": ["version", "input", "layers"],
    "additionalProperties": False,
}

LIBRARY = {  # an included file: shared blocks only
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"version": {"const": 1}, "description": {"type": "string"},
                   "include": INCLUDE, "blocks": BLOCKS},
    "required": ["version"],
    "additionalProperties": False,
}

# JSON Schema counts 3.0 as an integer; a spec must not: `kernel: 3.0` or `out: 7.` would give
# float shapes downstream. Integers are Python ints, never bools.
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)

# Keras argument names and their cnngraph spelling, for the hint of an unknown key.
KERAS_KEYS = {"filters": "out", "units": "out", "kernel_size": "kernel", "pool_size": "kernel",
              "strides": "stride", "dilation_rate": "dilation", "use_bias": "bias",
              "kernel_initializer": "init", "epsilon": "eps"}
MAX_SHOWN = 40  # characters of a received string shown in a message

_JSON_TYPES = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping",
               "null": "nothing"}


def _locate(container: Any, path: SpecPath, fallback: Location,
            key: str | None = None) -> Location:
    """The location of the value at `path` inside an LDict/LList tree (or of its key `key`)."""
    loc: Location = getattr(container, "loc", fallback)
    node = container
    for part in path:
        if not hasattr(node, "loc_of"):
            return loc
        try:
            loc = node.loc_of(part)
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return loc
    if key is not None and isinstance(node, LDict):
        return node.key_loc(key)
    return loc


def _describe(schema: dict[str, Any]) -> str:
    if "description" in schema:
        return str(schema["description"])
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    text = _JSON_TYPES.get(kind, "a valid value") if isinstance(kind, str) else "a valid value"
    if "minimum" in schema:
        text += f" >= {schema['minimum']}"
    if "exclusiveMinimum" in schema:
        text += f" > {schema['exclusiveMinimum']}"
    if "maximum" in schema:
        text += f" <= {schema['maximum']}"
    if "exclusiveMaximum" in schema:
        text += f" < {schema['exclusiveMaximum']}"
    return text


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        if len(value) > 6 or len(repr(value)) > 2 * MAX_SHOWN:
            return f"a list of {len(value)}"
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, str) and len(value) > MAX_SHOWN:
        return repr(value[:MAX_SHOWN]) + f"... ({len(value):,} characters)"
    return repr(value)


def _floats(value: Any) -> list[float]:
    """The whole-number floats in a value or a list of values (`3.0`, `1e1`, `7.`)."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, float) and v.is_integer()]


def _type_hint(schema: dict[str, Any], value: Any) -> str:
    """A hint for a number where an integer was expected (`kernel: 3.0`)."""
    text = str(schema)
    if "'integer'" not in text or "'number'" in text:
        return ""
    whole = _floats(value)
    if whole:
        return (f"expected an integer, received {whole[0]!r}: write `{int(whole[0])}` (sizes, "
                "counts and strides are whole numbers without a decimal point or exponent)")
    values = value if isinstance(value, list) else [value]
    fractions = [v for v in values if isinstance(v, float)]
    if fractions:
        return (f"{fractions[0]!r} is not a whole number; sizes, counts, strides and factors "
                f"are (e.g. `{max(1, round(fractions[0]))}`)")
    return ""


def _unknown_key_hint(key: str, value: Any, allowed: list[str]) -> str:
    """Habits from Keras get a pointer to the cnngraph way."""
    if key == "activation":
        act = value if isinstance(value, str) and len(value) <= MAX_SHOWN else "relu"
        return (f"cnngraph has no `activation` argument: an activation is a layer of its own; "
                f"remove `activation` and add `- {act}` on the next line")
    if KERAS_KEYS.get(key) in allowed:
        return f"did you mean `{KERAS_KEYS[key]}`? (`{key}` is Keras's name for it)"
    return ""


def _unknown_keys(error: jsonschema.ValidationError, root: Any, path: SpecPath, base: Location,
                  where: str) -> list[Problem]:
    """One problem per unknown key of a mapping, each at its key, so every misspelling (and
    every Keras habit) is reported in one run."""
    allowed = sorted(error.schema.get("properties", {}))
    allowed_text = ", ".join(f"`{k}`" for k in allowed) or "none"
    problems = []
    for key in (k for k in error.instance if k not in allowed):
        hint = _unknown_key_hint(key, error.instance.get(key), allowed) or nearest(key, allowed)
        problems.append(Problem(f"unknown key `{key}`{where}", _locate(root, path, base, key),
                                (hint + (" " if hint.endswith("?") else "; ") if hint else "")
                                + f"allowed keys: {allowed_text}"))
    return problems


def _problem(error: jsonschema.ValidationError, root: Any, base: Location,
             what: str) -> list[Problem]:
    path = tuple(error.absolute_path)
    loc = _locate(root, path, base)
    field = f"`{path[-1]}`" if path and isinstance(path[-1], str) else "this value"
    where = f" of {what}" if what else ""
    kind = error.validator
    if kind == "additionalProperties":
        return _unknown_keys(error, root, path, base, where)
    return [_single_problem(error, loc, field, where, kind, what)]


def _single_problem(error: jsonschema.ValidationError, loc: Location, field: str, where: str,
                    kind: str, what: str) -> Problem:
    path = tuple(error.absolute_path)
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return Problem(f"missing required key `{missing}`{where}", loc,
                       f"add `{missing}: ...`")
    if kind == "propertyNames":
        return Problem(f"invalid name {show(error.instance)}{where}", loc,
                       "names are letters, digits and `_`, not starting with a digit")
    if kind == "enum":
        hint = nearest(str(error.instance), [str(v) for v in error.validator_value])
        return Problem(f"invalid value for {field}{where}: expected {_describe(error.schema)}, "
                       f"received {show(error.instance)}", loc, hint)
    if kind in ("minItems", "maxItems") and "description" not in error.schema:
        return Problem(f"invalid value for {field}{where}: {error.message}", loc)
    if not path:
        # Name the kind of value only: the file may be something else than a spec, and its
        # content must not be echoed back.
        kind = {str: "a string", list: "a list", int: "a number", float: "a number",
                bool: "true or false"}.get(type(error.instance), "something else")
        return Problem(f"{what or 'the document'} must be {_describe(error.schema)}, received "
                       f"{kind}", loc, "a spec is a mapping with `version`, `input` and "
                                       "`layers`; is this file a spec?")
    # type, minimum, const, anyOf...: say what the schema at this place expects.
    return Problem(f"invalid value for {field}{where}: expected {_describe(error.schema)}, "
                   f"received {show(error.instance)}", loc,
                   _type_hint(error.schema, error.instance))


def check(instance: Any, schema: dict[str, Any], base: Location, what: str = "") -> list[Problem]:
    """Validate `instance` (an LDict/LList tree) and return one Problem per error found."""
    validator = Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    return [problem for error in errors for problem in _problem(error, instance, base, what)]
