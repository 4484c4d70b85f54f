"""JSON Schema (Draft 2020-12) for the spec document, and readable, located schema errors.

The document schema checks the top level and the shape of block definitions. Layers are checked
one at a time against their own op's fragment (dispatching on the op name), which gives precise
messages instead of the vague ones of one large `oneOf`.
"""
from __future__ import annotations

import jsonschema

from ..errors import Location, Problem
from ..ops import nearest
from ..ops.window import POSITIVE

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

_JSON_TYPES = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping",
               "null": "nothing"}


def _locate(container, path: tuple, fallback: Location, key: str | None = None) -> Location:
    """The location of the value at `path` inside an LDict/LList tree (or of its key `key`)."""
    loc = getattr(container, "loc", fallback)
    node = container
    for part in path:
        if not hasattr(node, "loc_of"):
            return loc
        try:
            loc = node.loc_of(part)
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return loc
    if key is not None and hasattr(node, "key_loc"):
        return node.key_loc(key)
    return loc


def _describe(schema: dict) -> str:
    if "description" in schema:
        return schema["description"]
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


def show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}" if len(value) > 6 else repr(list(value))
    return repr(value)


def _problem(error: jsonschema.ValidationError, root, base: Location, what: str) -> Problem:
    path = tuple(error.absolute_path)
    loc = _locate(root, path, base)
    field = f"`{path[-1]}`" if path and isinstance(path[-1], str) else "this value"
    where = f" of {what}" if what else ""
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in error.schema.get("properties", {})]
        key = extras[0] if extras else "?"
        hint = nearest(key, allowed)
        allowed_text = ", ".join(f"`{k}`" for k in allowed) or "none"
        return Problem(f"unknown key `{key}`{where}",
                       _locate(root, path, base, key) if extras else loc,
                       (hint + " " if hint else "") + f"allowed keys: {allowed_text}")
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
        return Problem(f"{what or 'the document'} must be {_describe(error.schema)}, received "
                       f"{show(error.instance)}", loc, "a spec is a mapping with `version`, "
                                                        "`input` and `layers`")
    # type, minimum, const, anyOf...: say what the schema at this place expects.
    return Problem(f"invalid value for {field}{where}: expected {_describe(error.schema)}, "
                   f"received {show(error.instance)}", loc)


def check(instance, schema: dict, base: Location, what: str = "") -> list[Problem]:
    """Validate `instance` (an LDict/LList tree) and return one Problem per error found."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    return [_problem(error, instance, base, what) for error in errors]
