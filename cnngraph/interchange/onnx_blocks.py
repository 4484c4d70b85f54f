"""Repeated structure of an imported network folded into `blocks:` and `repeat:`.

An imported graph is a flat list of layers. Where it passes through a single tensor (a cut:
no later layer reads anything before it), what lies between two cuts is a unit with one input
and one output: a residual block, an Inception module, a dense layer, a shuffle unit. Units of
one structure (the same ops wired the same way) become one block; the arguments that differ
between its uses become the block's parameters (one per distinct sequence of values; a value
that is always a whole multiple of another's is written as that multiple: a bottleneck's
`$out * 4`). Consecutive uses with the same arguments become one `repeat`. Layers outside
any unit stay as they are.

The folded spec must expand to the flat one, layer for layer (op and shape); the importer
checks that, and keeps the flat spec where it does not.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..ops import REGISTRY
from ..spec.emit import flow

KINDS = {"add": "residual", "concat": "mixed", "mul": "gated"}
MAX_PERIOD = 8
# ops that end a unit after its merge (a residual block's ReLU, a shuffle unit's shuffle)
TAILS = {op.name for op in REGISTRY.values() if op.package.endswith(".pointwise")} | {
    "channel_shuffle"}


@dataclass
class Family:
    """A block: the structure its uses share and their parameters."""

    name: str
    start: int                          # the first use's first layer (its layers are the body)
    size: int
    params: list[str]                   # parameter names, in order
    uses: list[tuple[int, dict[str, Any]]]     # (first layer, parameter values) of each use
    fields: dict[tuple[int, str], str]  # (body layer, attribute) -> its expression


def _inputs(layers: list[Any], index: dict[str, int], j: int) -> list[int]:
    return [index[n] if n != "input" else -1 for n in layers[j].inputs]


def units(layers: list[Any]) -> list[tuple[int, int]]:
    """[first, last] of each unit: runs between consecutive cuts (a single layer, in a chain),
    a branching unit with the activations and channel shuffle right after its merge."""
    index = {layer.name: i for i, layer in enumerate(layers)}
    reads = [min(_inputs(layers, index, j)) for j in range(len(layers))]
    earliest = [len(layers)] * (len(layers) + 1)      # earliest layer read after position j
    for j in range(len(layers) - 1, -1, -1):
        earliest[j] = min(earliest[j + 1], reads[j])
    cuts = [-1] + [i for i in range(len(layers)) if earliest[i + 1] >= i]
    found: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a + 1 == b and found and found[-1][1] > found[-1][0] and layers[b].op in TAILS:
            found[-1] = (found[-1][0], b)
        else:
            found.append((a + 1, b))
    out: list[tuple[int, int]] = []
    chain: list[int] = []            # consecutive single layers, cut where their roles repeat
    for first, last in found + [(len(layers), len(layers) + 1)]:
        if first == last:
            chain.append(first)
            continue
        out += _chunks(layers, chain)
        chain = []
        if last <= len(layers):
            out.append((first, last))
    return out


def _role(layer: Any) -> tuple[Any, ...]:
    """What a layer does in a chain, for finding repeats: its op, kernel and whether it is
    grouped (a depthwise conv and a pointwise one play different roles)."""
    attributes = _attributes(layer)
    return (layer.op, attributes.get("kernel"), attributes.get("groups", 1) > 1)


def _chunks(layers: list[Any], chain: list[int]) -> list[tuple[int, int]]:
    """A chain of layers as units: the longest run of a repeating sequence of roles (two or
    more repeats of two to MAX_PERIOD layers; fewer, longer repeats preferred, and repeats
    that start at a layer with weights, end after one and differ in few arguments) as one
    unit per repeat, then the same on either side of it; single layers elsewhere."""
    if len(chain) < 4:
        return [(j, j) for j in chain]
    roles = [_role(layers[j]) for j in chain]
    best = None                            # (score, start, period, repeats)
    for start in range(len(chain)):
        for period in range(2, MAX_PERIOD + 1):
            repeats = 1
            while roles[start + repeats * period:start + (repeats + 1) * period] == \
                    roles[start:start + period] and start + (repeats + 1) * period <= len(chain):
                repeats += 1
            if repeats < 2:
                continue
            # a unit reads best starting at a layer with weights, ending after one, and with
            # few parameters
            varying = {values for values in (
                tuple(repr(layers[chain[start + r * period + k]].args) for r in range(repeats))
                for k in range(period)) if len(set(values)) > 1}
            score = period * repeats - repeats / 2 - len(varying) + 2 * (
                bool(layers[chain[start]].params) + (not layers[chain[start + period - 1]].params))
            if best is None or score > best[0]:
                best = (score, start, period, repeats)
    if best is None:
        return [(j, j) for j in chain]
    _, start, period, repeats = best
    end = start + period * repeats
    return (_chunks(layers, chain[:start])
            + [(chain[start + r * period], chain[start + (r + 1) * period - 1])
               for r in range(repeats)]
            + _chunks(layers, chain[end:]))


def _structure(layers: list[Any], index: dict[str, int], first: int, last: int) -> tuple:
    return tuple((layers[j].op, tuple("in" if i == first - 1 else i - first
                                      for i in _inputs(layers, index, j)))
                 for j in range(first, last + 1))


def _attributes(layer: Any) -> dict[str, Any]:
    """The layer's attributes, defaults filled in (so a written and an omitted default
    compare equal)."""
    attrs = REGISTRY[layer.op].attrs(layer.args or {})
    if not dataclasses.is_dataclass(attrs) or isinstance(attrs, type):
        return {}
    return dataclasses.asdict(attrs)


def spec_value(value: Any) -> Any:
    """An attribute value as a spec writes it: equal pairs and quadruples as one number."""
    if isinstance(value, tuple):
        if len(set(value)) == 1:
            return value[0]
        if len(value) == 4 and value[0] == value[1] and value[2] == value[3]:
            return [value[0], value[2]]
        return list(value)
    return value


def families(layers: list[Any]) -> list[Family]:
    """The blocks: each structure of two or more layers that units share."""
    index = {layer.name: i for i, layer in enumerate(layers)}
    groups: dict[tuple, list[int]] = {}
    for first, last in units(layers):
        if last > first:
            groups.setdefault(_structure(layers, index, first, last), []).append(first)
    found: list[Family] = []
    counts: dict[str, int] = {}
    for structure, firsts in groups.items():
        size = len(structure)
        kind = next((KINDS[op] for op, _ in reversed(structure) if op in KINDS), "unit")
        counts[kind] = counts.get(kind, 0) + 1
        name = f"{kind}{counts[kind]}"
        values: dict[tuple[int, str], list[Any]] = {}
        for first in firsts:
            for offset in range(size):
                for key, value in _attributes(layers[first + offset]).items():
                    values.setdefault((offset, key), []).append(value)
        params: list[str] = []
        vectors: dict[str, list[Any]] = {}
        fields: dict[tuple[int, str], str] = {}
        for (offset, key), seen in values.items():
            if len({repr(v) for v in seen}) == 1:
                continue
            same = next((p for p, v in vectors.items() if v == seen), None)
            if same is not None:
                fields[(offset, key)] = f"${same}"
                continue
            multiple = next((f"${p} * {seen[0] // v[0]}" for p, v in vectors.items()
                             if all(type(a) is int and type(b) is int and b > 0 and a % b == 0
                                    and a // b == seen[0] // v[0] >= 2
                                    for a, b in zip(seen, v, strict=True))), None)
            if multiple is not None:
                fields[(offset, key)] = multiple
                continue
            param = key if key not in vectors else \
                f"{key}{sum(p.rstrip('0123456789') == key for p in vectors) + 1}"
            vectors[param] = seen
            params.append(param)
            fields[(offset, key)] = f"${param}"
        uses = [(first, {p: spec_value(vectors[p][i]) for p in params})
                for i, first in enumerate(firsts)]
        found.append(Family(name, firsts[0], size, params, uses, fields))
    return found


def _body_ids(layers: list[Any], family: Family) -> dict[int, str]:
    """Ids for the body layers that a later body layer reads other than as the layer above:
    the first use's own names, without the use's common prefix."""
    index = {layer.name: i for i, layer in enumerate(layers)}
    start = family.start
    names = [layers[start + k].name for k in range(family.size)]
    prefix = _common_prefix(names)
    wanted = {i - start for k in range(family.size) if _wired(layers, index, start, k)
              for i in _inputs(layers, index, start + k) if i >= start}
    ids: dict[int, str] = {}
    for k in sorted(wanted):
        local = names[k][len(prefix):].lstrip(".") or f"l{k}"
        ids[k] = local if local not in ids.values() else f"{local}_{k}"
    return ids


def _wired(layers: list[Any], index: dict[str, int], start: int, k: int) -> bool:
    """Whether body layer k needs `from`: its input is not just the layer above it."""
    return _inputs(layers, index, start + k) != [start + k - 1]


def _common_prefix(names: list[str]) -> str:
    parts = [name.split(".") for name in names]
    common = []
    for segment in zip(*parts, strict=False):
        if len(set(segment)) != 1:
            break
        common.append(segment[0])
    prefix = ".".join(common)
    return prefix if all(name != prefix for name in names) else ""


def block_text(layers: list[Any], family: Family) -> list[str]:
    """The `blocks:` entry of a family."""
    ids = _body_ids(layers, family)
    index = {layer.name: i for i, layer in enumerate(layers)}
    start = family.start
    lines = [f"  {family.name}:", f"    params: {flow({p: None for p in family.params})}"
             if family.params else "    params: {}", "    layers:"]
    for k in range(family.size):
        layer = layers[start + k]
        args = dict(layer.args or {})
        for (offset, key), expression in family.fields.items():
            if offset == k:
                args[key] = expression
        wiring = [f"        id: {ids[k]}"] if k in ids else []
        if _wired(layers, index, start, k):
            sources = ["input" if i == start - 1 else ids[i - start]
                       for i in _inputs(layers, index, start + k)]
            wiring.append(f"        from: {sources_text(sources)}")
        lines += [layer_head("      - ", layer.op, args, bool(wiring)), *wiring]
    return lines


def layer_head(indent: str, op: str, args: dict[str, Any], wired: bool) -> str:
    """`- op: {args}`, or `- op` alone, or `- op:` where wiring keys follow (YAML needs it)."""
    if args:
        return f"{indent}{op}: {flow(args)}"
    return f"{indent}{op}:" if wired else f"{indent}{op}"


def sources_text(sources: list[str]) -> str:
    return sources[0] if len(sources) == 1 else f"[{', '.join(sources)}]"


def folded_layers(layers: list[Any], shapes: list[tuple[int, ...]]) -> list[str] | None:
    """The `blocks:` and `layers:` sections of the folded spec (`shapes`: each flat layer's
    output shape, for the comments), or None where nothing repeats."""
    found = families(layers)
    if not found:
        return None
    uses = {first: (family, values) for family in found for first, values in family.uses}
    lines = ["blocks:"]
    for family in found:
        lines += block_text(layers, family)
    lines.append("layers:")
    taken: set[str] = set()
    i = 0
    while i < len(layers):
        if i not in uses:
            lines.append(commented(layer_head("  - ", layers[i].op, layers[i].args, True),
                                   shapes[i]))
            lines.append(f"    id: {layers[i].name}")
            i += 1
            continue
        family, values = uses[i]
        count, j = 1, i + family.size
        while j in uses and uses[j][0] is family and uses[j][1] == values:
            count, j = count + 1, j + family.size
        call = f"{family.name}: {flow(values)}"
        if count > 1:
            lines.append(commented(f"  - repeat: {count}", shapes[j - 1]))
            lines.append(f"    layers: [{call}]")
        else:
            lines.append(commented(f"  - {call}", shapes[j - 1]))
            prefix = _common_prefix([layer.name for layer in layers[i:j]])
            if prefix and prefix not in taken and all(layer.name != prefix for layer in layers):
                taken.add(prefix)
                lines.append(f"    id: {prefix}")
        i = j
    return lines


def commented(text: str, shape: tuple[int, ...]) -> str:
    """A spec line with a layer's output shape as a comment."""
    return f"{text:<72}  # {'x'.join(str(d) for d in shape)}"
