"""`cnngraph draw`: a network as a Graphviz diagram.

One box per layer (its name, op and key attributes: kernel, stride, padding, groups, output
channels; its parameters), the output shape on every edge, the input and every output (with
its loss) as nodes of their own, and each block and branch a cluster around its layers,
nested as the blocks nest. `depth` collapses the groups below it into one box each (their
block, layer count and parameters; the edges carry the shapes), as torchview's `depth` does.

`dot_source` needs nothing; `render` lays the graph out into SVG or PNG with the `graphviz`
package and the `dot` program (the `draw` extra and Graphviz itself).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CnngraphError
from ..ir import INPUT, Network, Node
from ..ops.base import numel
from ..ops.pointwise import ROWS
from .summary import geometry

FORMATS = ("svg", "png", "dot")
MISSING = ("drawing SVG or PNG needs Graphviz: pip install 'cnngraph[draw]' and the `dot` "
           "program (apt-get install graphviz, brew install graphviz); `-o FILE.dot` needs "
           "neither")
# colours by kind of op, as Netron groups them
COLOURS = {"conv": "#c9dcf0", "locally_connected": "#c9dcf0", "dense": "#c9dcf0",
           "batchnorm": "#e3e3e3", "lrn": "#e3e3e3", "maxpool": "#d5ecd4", "avgpool": "#d5ecd4",
           "global_avgpool": "#d5ecd4", "adaptive_avgpool": "#d5ecd4", "concat": "#f3dfc1",
           "add": "#f3dfc1", "mul": "#f3dfc1", "dropout": "#f5f5f5", "flatten": "#f5f5f5"}
ACTIVATION = "#f7d4d4"
ACTIVATIONS = {row.name for row in ROWS} | {"prelu", "softmax"}


class DrawError(CnngraphError):
    """A diagram that cannot be written (no Graphviz, an unknown format)."""


def shape_text(shape) -> str:
    return "×".join(map(str, shape))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def details(node: Node) -> str:
    """The attributes that say what a layer does: `7×7 /2 pad 3, 64` for a conv."""
    parts = [geometry(node).replace("x", "×")]
    if not parts[0] and node.op != "conv":
        parts = [f"{k} {v}" for k, v in node.args.items()
                 if k not in ("init", "out") and not isinstance(v, (dict, list))][:2]
    text = " ".join(p for p in parts if p)
    if node.op in ("conv", "dense", "locally_connected"):
        return (text + ", " if text else "") + f"{node.shape[0]}"
    return text


@dataclass
class _Cluster:
    name: str
    label: str
    members: list[str] = field(default_factory=list)       # node ids drawn in it
    children: list[_Cluster] = field(default_factory=list)


def _groups_of(net: Network, name: str) -> list[str]:
    """The groups a layer sits in, outermost first."""
    parts = name.split(".")
    return [g for g in (".".join(parts[:k]) for k in range(1, len(parts))) if g in net.groups]


def dot_source(net: Network, depth: int | None = None, rankdir: str = "TB") -> str:
    """The diagram as Graphviz DOT; groups deeper than `depth` (0: even the top-level blocks)
    are one box each."""
    def representative(name: str) -> str:
        groups = _groups_of(net, name)
        return groups[depth] if depth is not None and len(groups) > depth else name

    lines = [f"digraph {_quote(net.name)} {{", f"  rankdir={rankdir};",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica,'
             " fontsize=11];", "  edge [fontname=Helvetica, fontsize=9, color=\"#555555\"];",
             f"  {_quote(INPUT)} [label={_quote('input ' + shape_text(net.input_shape))},"
             " shape=oval, fillcolor=\"#fff6c6\"];"]
    boxes: dict[str, list[Node]] = {}
    for node in net.nodes:
        boxes.setdefault(representative(node.name), []).append(node)
    declared = {}
    for box, members in boxes.items():
        if box in net.groups and box != members[0].name:
            params = sum(numel(s) for n in members for s in n.params.values())
            label = (f"{box}\n{net.groups[box]} ({len(members)} layers)\n{params:,} params")
            declared[box] = f"label={_quote(label)}, fillcolor=\"#ece6f5\""
        else:
            node = members[0]
            params = sum(numel(s) for s in node.params.values())
            label = "\n".join(filter(None, [node.name, f"{node.op}  {details(node)}".strip(),
                                            f"{params:,} params" if params else ""]))
            colour = COLOURS.get(node.op, ACTIVATION if node.op in ACTIVATIONS else "white")
            declared[box] = f"label={_quote(label)}, fillcolor={_quote(colour)}"
    lines += _clusters(net, declared, depth)
    edges = []
    for node in net.nodes:
        target = representative(node.name)
        for tensor in node.inputs:
            source = INPUT if tensor == INPUT else representative(tensor)
            edge = (source, target, shape_text(net.shape_of(tensor)))
            if source != target and edge not in edges:
                edges.append(edge)
    lines += [f"  {_quote(s)} -> {_quote(t)} [label={_quote(' ' + label)}];"
              for s, t, label in edges]
    for output in net.outputs:
        name = f"output:{output.name}"
        text = f"{output.name} {shape_text(net.shape_of(output.node))}\n{output.loss}"
        lines += [f"  {_quote(name)} [label={_quote(text)}, shape=oval, fillcolor=\"#fff6c6\"];",
                  f"  {_quote(representative(output.node))} -> {_quote(name)};"]
    return "\n".join([*lines, "}"]) + "\n"


def _clusters(net: Network, declared: dict[str, str], depth: int | None) -> list[str]:
    """The declarations of the boxes, each inside the clusters of its groups (those shallower
    than `depth`), nested."""
    root = _Cluster("", "")
    clusters = {"": root}
    for group, block in net.groups.items():
        level = group.count(".")
        if depth is not None and level >= depth:
            continue
        parent = clusters[".".join(g for g in group.split(".")[:-1])] \
            if "." in group else root
        label = group if block == "branch" else f"{group} ({block})"
        clusters[group] = _Cluster(group, label)
        parent.children.append(clusters[group])
    for box in declared:
        groups = [g for g in _groups_of(net, box) + ([box] if box in net.groups else [])
                  if g in clusters and g != box]
        clusters[groups[-1] if groups else ""].members.append(box)

    def emit(cluster: _Cluster, indent: str) -> list[str]:
        out = [f"{indent}{_quote(m)} [{declared[m]}];" for m in cluster.members]
        for child in cluster.children:
            out += [f"{indent}subgraph {_quote('cluster_' + child.name)} {{",
                    f"{indent}  label={_quote(child.label)}; style=\"rounded,dashed\";"
                    " color=\"#8a7fb0\"; fontname=Helvetica; fontsize=10;",
                    *emit(child, indent + "  "), f"{indent}}}"]
        return out

    return emit(root, "  ")


def render(source: str, path: Path) -> None:
    """Write DOT `source` to `path`, laid out as SVG or PNG by its suffix (or as DOT)."""
    kind = path.suffix.lstrip(".").lower()
    if kind not in FORMATS:
        raise DrawError(f"{path}: unknown diagram format `.{kind}`; write .svg, .png or .dot")
    if kind == "dot":
        path.write_text(source)
        return
    try:
        import graphviz
    except ImportError:
        raise DrawError(MISSING) from None
    try:
        path.write_bytes(graphviz.Source(source).pipe(format=kind, engine="dot"))
    except graphviz.ExecutableNotFound:
        raise DrawError(MISSING) from None
