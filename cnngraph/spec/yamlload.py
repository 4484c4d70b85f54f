"""Safe YAML reading that remembers where every value came from.

Mappings and sequences become `LDict` / `LList`: plain dicts and lists that also carry the
`Location` of themselves and of each child, so any later stage (schema, block expansion, shape
inference) can point at file:line:column. Only YAML's safe types are constructed; aliases are
followed with a bound on the expanded size, so a small file cannot blow up memory.
"""
from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from ..errors import Location, Problem, SpecError, SpecPath

MAX_VALUES = 200_000  # values after alias expansion; the largest shipped spec has a few thousand
MAX_DEPTH = 64
MAX_BYTES = 4 * 1024 * 1024
MAX_INT = 2**63 - 1  # integer literals; sizes are bounded much lower, by the shape rules
SUFFIXES = (".yaml", ".yml")
_BIG_HINT = "a tensor holds at most 2,147,483,647 elements per sample; is this a typo?"
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


# PyYAML ships no type stubs here, so its classes are Any to mypy, and subclassing one is an error.
class SpecLoader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader, with YAML 1.2's floats: `1e-3` is a number, as people write it in
    learning rates (YAML 1.1 reads it as a string)."""


_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
SpecLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_scalar(text: str, shown: str = "--set") -> Any:
    """A command-line value (`--set key=VALUE`) read as a YAML flow value, with the limits of
    a spec's values. Raises SpecError."""
    return parse_yaml(text, shown) if text.strip() else None


class LDict(dict[str, Any]):
    """A dict that knows its own location and that of each value."""

    loc: Location
    value_locs: dict[str, Location]
    key_locs: dict[str, Location]

    def loc_of(self, key: str) -> Location:
        return self.value_locs.get(key, self.loc.at(key))

    def key_loc(self, key: str) -> Location:
        return self.key_locs.get(key, self.loc_of(key))


class LList(list[Any]):
    """A list that knows its own location and that of each item."""

    loc: Location
    item_locs: list[Location]

    def loc_of(self, index: int) -> Location:
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc.at(index)


def ldict(items: dict[str, Any], loc: Location, value_locs: dict[str, Location] | None = None,
          key_locs: dict[str, Location] | None = None) -> LDict:
    out = LDict(items)
    out.loc = loc
    out.value_locs = dict(value_locs or {})
    out.key_locs = dict(key_locs or {})
    return out


def llist(items: list[Any], loc: Location, item_locs: list[Location] | None = None) -> LList:
    out = LList(items)
    out.loc = loc
    if item_locs is None:
        item_locs = [loc.at(i) for i in range(len(items))]
    out.item_locs = list(item_locs)
    return out


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, file: str):
        self.loader = loader
        self.file = file
        self.count = 0

    def mark(self, node: yaml.Node, path: SpecPath) -> Location:
        m = node.start_mark
        return Location(self.file, m.line + 1, m.column + 1, path)

    def convert(self, node: yaml.Node, path: SpecPath, depth: int = 0) -> Any:
        self.count += 1
        loc = self.mark(node, path)
        if self.count > MAX_VALUES:
            raise SpecError(Problem(
                f"the document expands to more than {MAX_VALUES:,} values", loc,
                "YAML aliases (*name) are expanded in full; use blocks and `repeat` instead"))
        if depth > MAX_DEPTH:
            raise SpecError(Problem(f"the document nests deeper than {MAX_DEPTH} levels", loc,
                                    "is an alias referring to itself?"))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in PLAIN_TAGS:
            raise SpecError(Problem(f"unsupported YAML tag {node.tag}", loc,
                                    "specs use plain mappings, lists and scalars"))
        if isinstance(node, yaml.MappingNode):
            written = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
            self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
            merged = len(node.value) - written  # merged pairs come first; written ones override
            items: dict[str, Any] = {}
            value_locs: dict[str, Location] = {}
            key_locs: dict[str, Location] = {}
            seen: dict[str, int | None] = {}  # key -> its line, None for a merged one
            for index, (key_node, value_node) in enumerate(node.value):
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise SpecError(Problem(f"expected a string key, received {key!r}",
                                            self.mark(key_node, path),
                                            "quote the key if it is meant as text"))
                if key in seen and index >= merged and seen[key] is not None:
                    raise SpecError(Problem(
                        f"duplicate key `{key}` (first at line {seen[key]})",
                        self.mark(key_node, path + (key,)),
                        "YAML keeps only the last one; remove or rename one of them"))
                seen[key] = key_node.start_mark.line + 1 if index >= merged else None
                items[key] = self.convert(value_node, path + (key,), depth + 1)
                value_locs[key] = self.mark(value_node, path + (key,))
                key_locs[key] = self.mark(key_node, path + (key,))
            return ldict(items, loc, value_locs, key_locs)
        if isinstance(node, yaml.SequenceNode):
            values = [self.convert(n, path + (i,), depth + 1) for i, n in enumerate(node.value)]
            return llist(values, loc, [self.mark(n, path + (i,)) for i, n in enumerate(node.value)])
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > 24:
            # Python refuses to convert a 4,300-digit string; no spec needs 25 digits.
            digits = sum(c.isdigit() for c in node.value)
            raise SpecError(Problem(f"expected an integer of at most 19 digits, received one "
                                    f"of {digits:,} digits", loc, _BIG_HINT))
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise SpecError(Problem(f"expected an integer between -2^63 and 2^63 - 1, received "
                                    f"{value}", loc, _BIG_HINT))
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(Problem(f"expected a finite number, received {value}", loc))
        return value


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISSOCK, "a socket"))


def read_text(path: str | Path, shown_as: str) -> str:
    """Read a spec file as UTF-8 text, turning every way that can fail into a SpecError.

    Only a regular `.yaml`/`.yml` file under MAX_BYTES is read: a device (`/dev/zero`), a pipe
    or a directory is refused from its metadata alone, and nothing of a file that is not a spec
    is ever echoed back (an `include:` must not become a way to print other files).
    """
    p = Path(path)
    where = Location(shown_as)
    try:
        info = os.stat(p)
    except FileNotFoundError:
        raise SpecError(Problem("file not found", where, "check the path")) from None
    except OSError as exc:
        raise SpecError(Problem(f"cannot read the file: {exc.strerror}", where)) from None
    for test, kind in _KINDS:
        if test(info.st_mode):
            hint = ("name a .yaml file inside it" if kind == "a directory"
                    else "a spec is a regular .yaml file")
            raise SpecError(Problem(f"expected a YAML file, received {kind}", where, hint))
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(Problem("expected a YAML file, received something that is not a "
                                "regular file", where))
    if p.suffix.lower() not in SUFFIXES:
        raise SpecError(Problem(f"expected a .yaml or .yml file, received "
                                f"`{p.suffix or p.name}`", where,
                                "specs and the files they include are YAML files named "
                                "*.yaml or *.yml"))
    if info.st_size > MAX_BYTES:
        raise SpecError(Problem(f"the file is {info.st_size:,} bytes; specs are limited to "
                                f"{MAX_BYTES:,}", where))
    try:
        with open(p, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)  # bounded even if the file grows meanwhile
    except OSError as exc:
        raise SpecError(Problem(f"cannot read the file: {exc.strerror}", where)) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(Problem(f"the file is over {MAX_BYTES:,} bytes, the limit for specs",
                                where))
    if b"\0" in raw:
        raise SpecError(Problem("this is a binary file, not a YAML spec", where))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(Problem(f"the file is not UTF-8 text (byte {exc.start})", where,
                                "save the spec as UTF-8")) from None


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def load_yaml(path: str | Path, shown_as: str | None = None) -> Any:
    """Parse one YAML document into LDict/LList/scalars. Raises SpecError."""
    shown = shown_as or str(path)
    text = read_text(path, shown)
    return parse_yaml(text, shown)


def parse_yaml(text: str, shown: str) -> Any:
    try:
        loader = SpecLoader(text)  # checks every character is printable, before parsing
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        raise SpecError(Problem(
            f"invalid YAML: control character {exc.character:#06x} in the text",
            Location(shown, line, column),
            "YAML allows only printable characters; remove it, or write it as an escape "
            "(\\t, \\x01) inside a double-quoted string")) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError(Problem("the file is empty", Location(shown, 1, 1),
                                    "a spec needs at least `version`, `input` and `layers`"))
        return _Converter(loader, shown).convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(shown, mark.line + 1, mark.column + 1) if mark else Location(shown)
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        start = exc.context_mark
        if start is not None and mark is not None and start.line != mark.line:
            message += f" (the construct began at line {start.line + 1}, column {start.column + 1})"
        hint = ""
        if "mapping values are not allowed" in message:
            hint = ("a layer written `- relu` cannot be followed by `id:` or `from:`; write "
                    "`- relu:` (with a colon), or check the indentation")
        raise SpecError(Problem(f"invalid YAML: {message}", loc, hint)) from None
    except yaml.YAMLError as exc:
        raise SpecError(Problem(f"invalid YAML: {exc}", Location(shown))) from None
    except RecursionError:
        raise SpecError(Problem("the document nests too deeply", Location(shown))) from None
    finally:
        loader.dispose()


def plain(value: Any) -> Any:
    """LDict/LList tree -> plain dicts and lists (for the IR and for printing)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
