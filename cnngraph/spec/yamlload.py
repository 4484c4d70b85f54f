"""Safe YAML reading that remembers where every value came from.

Mappings and sequences become `LDict` / `LList`: plain dicts and lists that also carry the
`Location` of themselves and of each child, so any later stage (schema, block expansion, shape
inference) can point at file:line:column. Only YAML's safe types are constructed; aliases are
followed with a bound on the expanded size, so a small file cannot blow up memory.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from ..errors import Location, Problem, SpecError

MAX_VALUES = 200_000  # values after alias expansion; the largest shipped spec has a few thousand
MAX_DEPTH = 64
MAX_BYTES = 4 * 1024 * 1024
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class SpecLoader(yaml.SafeLoader):
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


def load_scalar(text: str):
    """A command-line value (`--set key=VALUE`) read as a YAML flow value."""
    return yaml.load(text, Loader=SpecLoader)


class LDict(dict):
    """A dict that knows its own location and that of each value."""

    loc: Location
    value_locs: dict
    key_locs: dict

    def loc_of(self, key) -> Location:
        return self.value_locs.get(key, self.loc.at(key))

    def key_loc(self, key) -> Location:
        return self.key_locs.get(key, self.loc_of(key))


class LList(list):
    """A list that knows its own location and that of each item."""

    loc: Location
    item_locs: list

    def loc_of(self, index: int) -> Location:
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc.at(index)


def ldict(items: dict, loc: Location, value_locs: dict | None = None,
          key_locs: dict | None = None) -> LDict:
    out = LDict(items)
    out.loc = loc
    out.value_locs = dict(value_locs or {})
    out.key_locs = dict(key_locs or {})
    return out


def llist(items: list, loc: Location, item_locs: list | None = None) -> LList:
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

    def mark(self, node: yaml.Node, path: tuple) -> Location:
        m = node.start_mark
        return Location(self.file, m.line + 1, m.column + 1, path)

    def convert(self, node: yaml.Node, path: tuple, depth: int = 0):
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
            items, value_locs, key_locs, seen = {}, {}, {}, {}
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
            items = [self.convert(n, path + (i,), depth + 1) for i, n in enumerate(node.value)]
            return llist(items, loc, [self.mark(n, path + (i,)) for i, n in enumerate(node.value)])
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(Problem(f"expected a finite number, received {value}", loc))
        return value


def read_text(path: str | Path, shown_as: str) -> str:
    """Read a spec file as UTF-8 text, turning every way that can fail into a SpecError."""
    p = Path(path)
    where = Location(shown_as)
    if not p.exists():
        raise SpecError(Problem("file not found", where, "check the path"))
    if p.is_dir():
        raise SpecError(Problem("expected a YAML file, received a directory", where,
                                "name a .yaml file inside it"))
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SpecError(Problem(f"cannot read the file: {exc.strerror}", where)) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(Problem(f"the file is {len(raw):,} bytes; specs are limited to "
                                f"{MAX_BYTES:,}", where))
    if b"\0" in raw:
        raise SpecError(Problem("this is a binary file, not a YAML spec", where))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(Problem(f"the file is not UTF-8 text (byte {exc.start})", where,
                                "save the spec as UTF-8")) from None


def load_yaml(path: str | Path, shown_as: str | None = None):
    """Parse one YAML document into LDict/LList/scalars. Raises SpecError."""
    shown = shown_as or str(path)
    text = read_text(path, shown)
    return parse_yaml(text, shown)


def parse_yaml(text: str, shown: str):
    loader = SpecLoader(text)
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
        raise SpecError(Problem(f"invalid YAML: {message}", loc)) from None
    except yaml.YAMLError as exc:
        raise SpecError(Problem(f"invalid YAML: {exc}", Location(shown))) from None
    except RecursionError:
        raise SpecError(Problem("the document nests too deeply", Location(shown))) from None
    finally:
        loader.dispose()
