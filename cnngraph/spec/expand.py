"""Expansion: a validated document with includes, blocks, repeats and branches -> a flat graph.

Every layer becomes a `RawNode` with a stable dotted name and explicit inputs. Naming:
an `id` if given, else the op or block name with a counter per scope (`conv1`, `basic2`);
a block instance and a parallel branch open a naming scope (`layer1.basic2.conv1`,
`inception1.branch3.conv1`). Ids are visible in their scope and the scopes nested in it;
a block body sees only its own ids and `input` (the block's input); each repeat iteration has
its own ids.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Location, Problem, ProblemList, SpecError, Trace
from ..ir import Output
from ..ops import MERGES, REGISTRY, nearest
from ..ops.base import Shape
from . import schema
from .expr import ExprError, evaluate, is_expression
from .library import BlockDef, Library
from .outputs import Heads, check_heads, resolve_outputs
from .scope import Scope
from .train_schema import TRAIN
from .yamlload import LDict, LList, ldict, llist, load_yaml, parse_yaml, plain

MAX_NODES = 20_000
MAX_BLOCK_DEPTH = 32
STRUCTURAL = {"repeat": ("repeat", "layers"), "parallel": ("parallel", "merge"),
              "when": ("when", "layers")}
WIRING = ("id", "from", "output")


@dataclass(frozen=True)
class RawNode:
    """One op of the expanded graph; `args` is None when its arguments were invalid."""

    name: str
    op: str
    args: dict[str, Any] | None
    inputs: tuple[str, ...]
    loc: Location
    trace: Trace = ()


@dataclass(frozen=True)
class Expanded:
    name: str
    file: str
    input_shape: Shape
    nodes: tuple[RawNode, ...]
    output: str
    groups: dict[str, str]  # dotted group name -> what it is ('basic', 'branch', ...)
    train: dict[str, Any]
    heads: tuple[Output, ...]     # every output, `main` first (spec/outputs.py)
    input_loc: Location | None = None
    params: dict[str, Any] = field(default_factory=dict)   # the spec's parameters, resolved


class Expander:
    def __init__(self, problems: ProblemList, library: Library):
        self.problems = problems
        self.blocks = library.blocks
        self.nodes: list[RawNode] = []
        self.names: dict[str, Location] = {}
        self.groups: dict[str, str] = {}
        # Every name made so far (layers, block instances, branches) -> the tensor it outputs.
        self.outputs: dict[str, str] = {}
        self.heads = Heads()

    # -- reporting ---------------------------------------------------------------------------
    def error(self, scope: Scope | None, message: str, loc: Location, hint: str = "") -> None:
        self.problems.add(message, loc, hint, scope.trace if scope else ())

    # -- values --------------------------------------------------------------------------------
    def substitute(self, value: Any, env: dict[str, Any], loc: Location, scope: Scope) -> Any:
        """Evaluate `$` expressions inside a value; raises ExprError located by the caller."""
        if isinstance(value, LDict):
            return ldict({k: self.substitute(v, env, value.loc_of(k), scope)
                          for k, v in value.items()}, value.loc, value.value_locs,
                         value.key_locs)
        if isinstance(value, LList):
            return llist([self.substitute(v, env, value.loc_of(i), scope)
                          for i, v in enumerate(value)], value.loc, value.item_locs)
        if is_expression(value):
            try:
                return evaluate(value, env)
            except ExprError as exc:
                self.error(scope, str(exc), loc,
                           "expressions use the parameters of the enclosing block, or the "
                           "spec's own (its top-level `params:`)" if env else
                           "`$name` refers to a block parameter, or to a parameter of the "
                           "spec declared under its top-level `params:` (e.g. "
                           "`params: {width: 1.0}`)")
                raise
        return value

    # -- layers --------------------------------------------------------------------------------
    def emit(self, scope: Scope, name: str, op: str, args: dict[str, Any] | None,
             inputs: list[str], loc: Location) -> str:
        if name in self.names and self.names[name] == loc:
            self.error(scope, f"the id of `{name}` would name a layer in every iteration of "
                              "`repeat`", loc,
                       "ids directly inside `repeat` are not allowed: put these layers in a "
                       "block and repeat the block (each use of a block gets its own names)")
        elif name in self.names:
            self.error(scope, f"the name `{name}` is used twice (first at {self.names[name]})",
                       loc, "give each layer a distinct `id`; inside `repeat`, put layers "
                            "with ids in a block, which gets its own names")
        self.names[name] = loc
        self.outputs[name] = name
        self.nodes.append(RawNode(name, op, args, tuple(inputs), loc, scope.trace))
        if len(self.nodes) > MAX_NODES:
            raise SpecError(Problem(f"the network expands to more than {MAX_NODES:,} layers",
                                    loc, "check `repeat` counts and recursive blocks"))
        return name

    def sequence(self, items: Any, cur: str, scope: Scope, loc: Location) -> str:
        """Expand a list of layers fed by `cur`; returns the name of its output tensor."""
        if not isinstance(items, LList):
            self.error(scope, f"expected a list of layers, received {schema.show(items)}", loc)
            return cur
        for index, item in enumerate(items):
            cur = self.item(item, items.loc_of(index), cur, scope)
        return cur

    def wiring(self, item: LDict, loc: Location, cur: str,
               scope: Scope) -> tuple[list[str] | None, str | None]:
        """The item's inputs (from `from`, else the previous output) and its `id`, or None."""
        ident = item.get("id")
        if ident is not None and (not isinstance(ident, str)
                                  or not re.match(schema.ID_PATTERN, ident)
                                  or ident == "input"):
            self.error(scope, f"invalid id {schema.show(ident)}", item.loc_of("id"),
                       "an id is a name of letters, digits and `_` (dots separate scopes); "
                       "`input` is reserved")
            ident = None
        if "from" not in item:
            return [cur], ident
        source = item["from"]
        refs = [source] if isinstance(source, str) else source
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            self.error(scope, f"invalid value for `from`: expected an id or a list of ids, "
                              f"received {schema.show(source)}", item.loc_of("from"))
            return [cur], ident
        inputs = []
        for i, ref in enumerate(refs):
            target = scope.lookup(ref, self.outputs)
            if target is None:
                visible = scope.visible_ids()
                hint = nearest(ref, visible + self.local_names(scope))
                self.error(scope, f"`from` names `{ref}`, but no earlier layer has that id "
                                  "or name",
                           source.loc_of(i) if isinstance(source, LList) else item.loc_of("from"),
                           (hint + " " if hint else "") + "ids visible here: "
                           + (", ".join(f"`{v}`" for v in visible) or "none")
                           + "; a layer without an id is named by its op and a counter "
                             "(`conv1`), see `cnngraph expand`")
                return None, ident
            inputs.append(target)
        return inputs, ident

    def local_names(self, scope: Scope) -> list[str]:
        """Generated names reachable from `scope`, relative to it (for a did-you-mean)."""
        names: list[str] = []
        prefixes: list[str] = []
        enclosing: Scope | None = scope
        while enclosing is not None:
            prefixes.append(enclosing.prefix)
            enclosing = enclosing.parent
        for name in self.outputs:
            names += [name[len(p):] for p in prefixes if name.startswith(p)]
        return names

    def item(self, item: Any, loc: Location, cur: str, scope: Scope) -> str:
        """Expand one item of a list of layers fed by `cur`; returns the tensor the next item
        reads: the item's output, or `cur` again after a head (an item with `output:`)."""
        made = len(self.nodes)
        out = self.layer(item, loc, cur, scope)
        if not isinstance(item, LDict) or "output" not in item:
            return out
        try:
            name = self.substitute(item["output"], scope.env, item.loc_of("output"), scope)
        except ExprError:
            return cur
        self.heads.declare(name, out if len(self.nodes) > made else None,
                           item.loc_of("output"), self.problems, scope.trace)
        return cur

    def layer(self, item: Any, loc: Location, cur: str, scope: Scope) -> str:
        if isinstance(item, str):
            item = ldict({item: None}, loc, {item: loc})
        if not isinstance(item, LDict):
            self.error(scope, f"expected a layer (an op or block name, or a mapping), received "
                              f"{schema.show(item)}", loc, "e.g. `- relu` or "
                                                            "`- conv: {out: 16, kernel: 3}`")
            return cur
        inputs, ident = self.wiring(item, loc, cur, scope)
        if inputs is None:
            return cur
        for kind, allowed in STRUCTURAL.items():
            if kind in item:
                extra = [k for k in item if k not in allowed + WIRING]
                if extra:
                    self.error(scope, f"unknown key `{extra[0]}` in a `{kind}` item",
                               item.key_loc(extra[0]),
                               "allowed keys: " + ", ".join(f"`{k}`" for k in allowed + WIRING))
                    return cur
                out: str | None = getattr(self, kind)(item, loc, inputs, ident, scope)
                if ident is not None and out is not None:
                    scope.ids[ident] = out
                return cur if out is None else out
        keys = [k for k in item if k not in WIRING]
        if len(keys) != 1:
            self.error(scope, "a layer is one op or block name with its arguments, found "
                              + (", ".join(f"`{k}`" for k in keys) or "none"), loc,
                       "write each op as its own list item: `- conv: {...}` then `- relu`")
            return cur
        key = keys[0]
        args = item[key]
        if args is None:
            args = ldict({}, item.loc_of(key))
        if not isinstance(args, LDict):
            self.error(scope, f"the arguments of `{key}` must be a mapping, received "
                              f"{schema.show(args)}", item.loc_of(key),
                       f"write `{key}: {{name: value, ...}}`")
            return cur
        if key in self.blocks:
            out = self.block(self.blocks[key], args, item.loc_of(key), inputs, ident, scope)
        elif key in REGISTRY:
            out = self.op(key, args, item.loc_of(key), inputs, ident, scope)
        else:
            known = sorted(REGISTRY) + sorted(self.blocks)
            hint = nearest(key, known)
            self.error(scope, f"unknown op or block `{key}`", loc,
                       (hint + " " if hint else "") + "ops: " + ", ".join(sorted(REGISTRY))
                       + ("; blocks: " + ", ".join(sorted(self.blocks)) if self.blocks else ""))
            return cur
        if ident is not None and out is not None:
            scope.ids[ident] = out
        return cur if out is None else out

    def op(self, name: str, args: LDict, loc: Location, inputs: list[str], ident: str | None,
           scope: Scope) -> str:
        op = REGISTRY[name]
        node_name = scope.prefix + ident if ident else scope.auto_name(name)
        if op.arity == 1 and len(inputs) != 1:
            self.error(scope, f"`{name}` takes one input, received {len(inputs)} in `from`",
                       loc, "merge several inputs with `add`, `concat` or `mul` first")
            return self.emit(scope, node_name, name, None, inputs, loc)
        if op.arity is None and len(inputs) < 2:
            self.error(scope, f"`{name}` merges two or more inputs, received {len(inputs)}", loc,
                       f"name them with `from: [a, b]`, or use `parallel` with `merge: {name}`")
            return self.emit(scope, node_name, name, None, inputs, loc)
        if op.arity == 2 and len(inputs) != 2:
            message, hint = self.binary(name, len(inputs))
            self.error(scope, message, loc, hint)
            return self.emit(scope, node_name, name, None, inputs, loc)
        try:
            values = self.substitute(args, scope.env, loc, scope)
        except ExprError:
            return self.emit(scope, node_name, name, None, inputs, loc)
        found = schema.check(values, op.schema, loc, f"`{name}`")
        for problem in found:
            self.problems.add(problem.message, problem.loc, problem.hint, scope.trace)
        return self.emit(scope, node_name, name, None if found else plain(values), inputs, loc)

    @staticmethod
    def binary(name: str, count: int) -> tuple[str, str]:
        """Message and hint for a two-input op (`mul`) given another number of inputs."""
        return (f"`{name}` takes exactly two inputs, received {count}",
                f"to multiply three tensors, chain two: `- {name}:` with `from: [a, b]` and "
                f"`id: ab`, then `- {name}:` with `from: [ab, c]` (`add` and `concat` take any "
                f"number of inputs)")

    def block(self, block: BlockDef, args: LDict, loc: Location, inputs: list[str],
              ident: str | None, scope: Scope) -> str | None:
        if block.name in scope.active_blocks:
            chain = " -> ".join(scope.active_blocks + (block.name,))
            self.error(scope, f"recursive block: {chain}", loc,
                       "a block must not use itself, directly or through other blocks")
            return None
        if len(scope.active_blocks) >= MAX_BLOCK_DEPTH:
            self.error(scope, f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels", loc,
                       "flatten the chain of blocks")
            return None
        if len(inputs) != 1:
            self.error(scope, f"block `{block.name}` takes one input, received {len(inputs)}", loc)
            return None
        env: dict[str, Any] = {}
        ok = True
        for key in args:
            if key not in block.params:
                hint = nearest(key, block.params)
                self.error(scope, f"block `{block.name}` has no parameter `{key}`",
                           args.key_loc(key), (hint + " " if hint else "") + "parameters: "
                           + (", ".join(f"`{p}`" for p in block.params) or "none"))
                ok = False
        for key, default in block.params.items():
            try:
                if key in args:
                    env[key] = self.substitute(args[key], scope.env, args.loc_of(key), scope)
                elif default is None:
                    self.error(scope, f"block `{block.name}` needs the parameter `{key}`", loc,
                               f"add `{key}: ...` to the arguments")
                    ok = False
                else:
                    env[key] = self.substitute(default, env, block.params.loc_of(key), scope)
            except ExprError:
                ok = False
        if not ok:
            return None
        instance = ident or scope.auto_name(block.name)[len(scope.prefix):]
        prefix = scope.prefix + instance
        self.groups[prefix] = block.name
        inner = Scope(prefix + ".", {}, {"input": inputs[0]}, None, env,
                      scope.trace + ((block.name, loc),), scope.active_blocks + (block.name,))
        out = self.sequence(block.layers, inputs[0], inner, block.loc)
        self.outputs.setdefault(prefix, out)
        return out

    def control(self, item: LDict, kind: str, loc: Location, scope: Scope) -> Any:
        """The evaluated value of a `repeat` or `when` key, or None after reporting a problem."""
        if "layers" not in item:
            self.error(scope, f"`{kind}` needs `layers`: the list of layers it controls", loc)
            return None
        if not isinstance(item["layers"], LList):
            self.error(scope, f"expected a list of layers, received {schema.show(item['layers'])}",
                       item.loc_of("layers"), "e.g. `layers: [conv: {out: 8, kernel: 3}, relu]`")
            return None
        try:
            return self.substitute(item[kind], scope.env, item.loc_of(kind), scope)
        except ExprError:
            return None

    def repeat(self, item: LDict, loc: Location, inputs: list[str], ident: str | None,
               scope: Scope) -> str | None:
        count = self.control(item, "repeat", loc, scope)
        if count is None:
            return None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            whole = isinstance(count, float) and count.is_integer() and count >= 0
            self.error(scope, f"invalid value for `repeat`: expected an integer >= 0, received "
                              f"{schema.show(count)}", item.loc_of("repeat"),
                       f"write `{int(count)}`: a count has no decimal point" if whole else "")
            return None
        cur = inputs[0]
        for _ in range(count):
            cur = self.sequence(item["layers"], cur, scope.same_names(), item.loc_of("layers"))
        return cur

    def when(self, item: LDict, loc: Location, inputs: list[str], ident: str | None,
             scope: Scope) -> str | None:
        condition = self.control(item, "when", loc, scope)
        if condition is None:
            return None
        if not isinstance(condition, bool):
            self.error(scope, f"invalid value for `when`: expected true or false, received "
                              f"{schema.show(condition)}", item.loc_of("when"),
                       "e.g. `when: $project` or `when: $stride > 1`")
            return None
        if not condition:
            return inputs[0]
        return self.sequence(item["layers"], inputs[0], scope.same_names(), item.loc_of("layers"))

    def parallel(self, item: LDict, loc: Location, inputs: list[str], ident: str | None,
                 scope: Scope) -> str | None:
        branches, merge = item["parallel"], item.get("merge")
        if merge not in MERGES:
            hint = nearest(str(merge), MERGES)
            self.error(scope, f"`parallel` needs `merge`: one of {', '.join(MERGES)}, received "
                              f"{schema.show(merge)}", item.loc_of("merge") if "merge" in item
                       else loc, hint)
            return None
        if not isinstance(branches, LList) or len(branches) < 2:
            self.error(scope, "`parallel` expected a list of two or more branches, received "
                              f"{schema.show(branches)}", item.loc_of("parallel"),
                       "each branch is a list of layers; `[]` is the identity")
            return None
        if REGISTRY[merge].arity == 2 and len(branches) != 2:
            message, hint = self.binary(merge, len(branches))
            self.error(scope, f"{message} (one per branch)", item.loc_of("merge"),
                       f"use two branches; {hint}")
            return None
        outputs: list[str] = []
        for i, branch in enumerate(branches):
            label = scope.auto_name("branch")
            if isinstance(branch, LList) and branch:
                self.groups[label] = "branch"
            inner = Scope(label + ".", {}, {}, scope, scope.env, scope.trace, scope.active_blocks)
            if branch is None:  # `- ` with nothing after it: an empty branch
                branch = llist([], branches.loc_of(i))
            outputs.append(self.sequence(branch, inputs[0], inner, branches.loc_of(i)))
            self.outputs.setdefault(label, outputs[-1])
        name = scope.prefix + ident if ident else scope.auto_name(merge)
        return self.emit(scope, name, merge, {}, outputs, item.loc_of("merge"))


def spec_params(doc: LDict, overrides: Mapping[str, Any], shown: str,
                problems: ProblemList) -> dict[str, Any]:
    """The values of the spec's top-level `params:`: each default, replaced by an override
    (`cnngraph.load(..., params=...)`, `--param NAME=VALUE`). Defaults may be expressions over
    the parameters declared before them, as a block's may."""
    declared = doc.get("params") or ldict({}, doc.loc)
    for name in overrides:
        if name not in declared:
            hint = nearest(name, list(declared))
            problems.add(f"the spec has no parameter `{name}` to set", declared.loc
                         if "params" in doc else Location(shown),
                         (hint + " " if hint else "") + "its parameters: "
                         + (", ".join(f"`{p}`" for p in declared) or
                            "none (declare them under a top-level `params:`)"))
    values: dict[str, Any] = {}
    for name, default in declared.items():
        value = overrides[name] if name in overrides else default
        if value is None:
            problems.add(f"the spec's parameter `{name}` needs a value", declared.loc_of(name),
                         f"give it a default (`{name}: ...`) or set it with `--param "
                         f"{name}=VALUE`")
            continue
        if name not in overrides and is_expression(value):
            try:
                value = evaluate(value, values)
            except ExprError as exc:
                problems.add(str(exc), declared.loc_of(name),
                             "a default may use the parameters declared before it")
                continue
        values[name] = value
    problems.raise_if_any()
    return values


def expand_file(path: str | Path, shown: str | None = None,
                params: Mapping[str, Any] | None = None) -> Expanded:
    """Load, validate and expand a spec file, its top-level `params:` set from `params`.
    Raises SpecError listing every problem found."""
    shown = shown or str(path)
    return _expand(load_yaml(path, shown), Path(path).resolve(), shown, params)


def expand_text(text: str, shown: str = "<string>", params: Mapping[str, Any] | None = None,
                folder: str | Path = ".") -> Expanded:
    """`expand_file` of a spec given as text; its `include:`s are read from `folder`."""
    return _expand(parse_yaml(text, shown), Path(folder).resolve() / shown, shown, params)


def _expand(doc: Any, real: Path, shown: str, params: Mapping[str, Any] | None) -> Expanded:
    problems = ProblemList()
    found = schema.check(doc, schema.DOCUMENT, Location(shown), "the spec")
    if isinstance(doc, LDict) and isinstance(doc.get("train"), LDict):
        found += schema.check(doc["train"], TRAIN, Location(shown), "`train`")
    if found:
        raise SpecError(found)
    library = Library(problems, real)
    library.load_includes(doc, real, shown, (real,))
    library.add_blocks(doc)
    expander = Expander(problems, library)
    values = spec_params(doc, params or {}, shown, problems)
    top = Scope("", {}, {"input": "input"}, None, values, ())
    output = expander.sequence(doc["layers"], "input", top, doc.loc_of("layers"))
    problems.raise_if_any()
    heads = expander.heads
    _check_unused(expander.nodes, {output, *(t for t, _ in heads.made.values())}, problems)
    check_heads(heads, _consumers(expander.nodes), problems)
    outputs = resolve_outputs(doc.get("train"), output, heads, problems, Location(shown))
    problems.raise_if_any()
    name = doc.get("name") or Path(shown).stem
    return Expanded(name=name, file=shown, input_shape=tuple(doc["input"]),
                    nodes=tuple(expander.nodes), output=output, groups=expander.groups,
                    train=plain(doc.get("train") or {}), heads=outputs,
                    input_loc=doc.loc_of("input"), params=plain(values))


def _consumers(nodes: list[RawNode]) -> dict[str, list[tuple[str, Location]]]:
    found: dict[str, list[tuple[str, Location]]] = {}
    for node in nodes:
        for tensor in node.inputs:
            found.setdefault(tensor, []).append((node.name, node.loc))
    return found


def _check_unused(nodes: list[RawNode], outputs: set[str], problems: ProblemList) -> None:
    used = {name for node in nodes for name in node.inputs}
    for node in nodes:
        if node.name not in outputs and node.name not in used:
            problems.add(f"the output of `{node.name}` is never used", node.loc,
                         "connect it to a later layer with `from`, make it an output with "
                         "`output: NAME`, or remove it", node.trace)
