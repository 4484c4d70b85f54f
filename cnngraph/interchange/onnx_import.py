"""ONNX import: an ONNX model as a cnngraph spec and a checkpoint of its weights.

    the file read, its constants folded and its shapes inferred (onnx_graph.py: weights
    built by ConstantOfShape, the shape arithmetic of a dynamic export)
      → one cnngraph layer per node the output needs, by the rule of the op that takes it in:
        each op folder's `onnx.py` lists the ONNX op types it imports in `IMPORTS` (op type
        -> rule(importer)); the patterns that span nodes (x·Sigmoid(x), per-channel constant
        affine maps, channel shuffle's Reshape-Transpose-Reshape) are the importer's own
      → the spec: repeated units folded into blocks (onnx_blocks.py), or one layer per node
        named by the graph; output shapes in comments; checked by loading it
      → its weights as a checkpoint with an identity normaliser.

An op, attribute or pattern it cannot take is an `OnnxImportError` naming the node, its op
type and what would be needed; nothing is written then.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..ops import REGISTRY
from ..spec.emit import flow
from .onnx_blocks import commented, folded_layers, layer_head, sources_text, spec_value
from .onnx_graph import (
    OnnxImportError,
    batch_sizes,
    fold_constants,
    infer_shapes,
    live_nodes,
    opset_of,
    read_model,
)

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def import_rules() -> dict[str, Any]:
    """ONNX op type -> import rule, from every op folder's `onnx.py` `IMPORTS`."""
    rules: dict[str, Any] = {}
    for package in sorted({op.package for op in REGISTRY.values()}):
        module = importlib.import_module(package + ".onnx")
        for op_type, rule in getattr(module, "IMPORTS", {}).items():
            assert op_type not in rules, f"{op_type} is imported by two op folders"
            rules[op_type] = rule
    return rules


@dataclass
class Layer:
    op: str
    args: dict[str, Any]
    name: str
    inputs: list[str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Pending:
    """A tensor that is part of a pattern still being read (channel shuffle's first Reshape
    and Transpose): what it came from and what is known so far."""

    kind: str
    source: str
    groups: int


class Importer:
    """The state of one import; the ops' import rules call its methods."""

    def __init__(self, model: Any):
        from onnx import helper, numpy_helper
        self.helper = helper
        self.graph = model.graph
        self.consts: dict[str, np.ndarray] = {
            i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.shapes: dict[str, tuple[int | None, ...]] = {}
        self.layers: list[Layer] = []
        self.by_name: dict[str, Layer] = {}
        self.tensors: dict[str, str] = {}          # ONNX tensor -> layer name (or "input")
        self.pending: dict[str, Pending] = {}
        self.names: set[str] = set()
        self.consumers: dict[str, int] = {}
        self.node: Any = None
        self.opset = opset_of(model)
        for node in model.graph.node:
            for tensor in node.input:
                self.consumers[tensor] = self.consumers.get(tensor, 0) + 1
        for output in model.graph.output:
            self.consumers[output.name] = self.consumers.get(output.name, 0) + 1

    # -- what the rules read --------------------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        for attribute in self.node.attribute:
            if attribute.name == name:
                value = self.helper.get_attribute_value(attribute)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def const(self, i: int) -> np.ndarray | None:
        """Input i's value where it is a constant, else None (also for an absent input)."""
        if i >= len(self.node.input) or not self.node.input[i]:
            return None
        return self.consts.get(self.node.input[i])

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def tensor(self, i: int) -> str:
        """The layer that input i is the output of (or "input")."""
        name = self.node.input[i]
        if name in self.pending:
            self.fail(f"its input {name} is part of a pattern that cannot be read here")
        if name not in self.tensors:
            self.fail(f"its input {name} is a constant where cnngraph needs a feature map")
        return self.tensors[name]

    def shape(self, tensor: str | None = None, i: int = 0) -> tuple[int | None, ...]:
        """The inferred shape of an ONNX tensor (default: input i), batch axis included."""
        name = tensor if tensor is not None else self.node.input[i]
        if name in self.consts:
            return tuple(self.consts[name].shape)
        if name not in self.shapes:
            self.fail(f"the shape of {name} could not be inferred")
        return self.shapes[name]

    def out_shape(self, j: int = 0) -> tuple[int | None, ...]:
        return self.shape(self.node.output[j])

    def only_consumer(self, tensor: str) -> bool:
        return self.consumers.get(tensor, 0) == 1

    def fail(self, why: str) -> NoReturn:
        node = self.node
        raise OnnxImportError(f"node `{node.name or node.output[0]}` ({node.op_type}): {why}; "
                              "nothing was written")

    # -- what the rules write -------------------------------------------------------------------
    def layer(self, op: str, args: dict[str, Any], inputs: list[str],
              params: dict[str, np.ndarray] | None = None,
              buffers: dict[str, np.ndarray] | None = None, output: int | None = 0) -> Layer:
        """A new layer computing the node's output `output` (None: a layer the node needs
        before the one that computes its output), named from the graph."""
        name = self._name(op, params)
        layer = Layer(op, args, name, inputs, dict(params or {}), dict(buffers or {}))
        self.layers.append(layer)
        self.by_name[name] = layer
        if output is not None:
            self.tensors[self.node.output[output]] = name
        return layer

    def alias(self, tensor: str, output: int = 0) -> None:
        """The node's output `output` is the layer `tensor` itself (Identity, Dropout...)."""
        self.tensors[self.node.output[output]] = tensor

    def producer(self, i: int) -> Layer | None:
        """The layer input i comes from, where it is a layer this import made."""
        return self.by_name.get(self.tensors.get(self.node.input[i], ""))

    def _name(self, op: str, params: dict[str, np.ndarray] | None) -> str:
        """The layer's id: its weight initializer's name without `.weight` where it has one
        (`layer1.0.conv1`: a module path), else the node's name (`/layer1/layer1.0/relu/Relu`
        loses its op type), made a valid dotted id; else op and counter."""
        candidates = []
        if params and self.node.input[1:2] and self.node.input[1].endswith(".weight"):
            candidates.append(self.node.input[1].removesuffix(".weight"))
        candidates.append(re.sub(rf"/{self.node.op_type}(_\d+)?$", "", self.node.name or ""))
        for text in candidates:
            name = _dotted(text)
            if name and name not in self.names and name != "input":
                self.names.add(name)
                return name
        count = 1
        while f"{op}{count}" in self.names:
            count += 1
        self.names.add(f"{op}{count}")
        return f"{op}{count}"


    # -- helpers the rules share ------------------------------------------------------------------
    @staticmethod
    def number(value: float) -> float:
        """A float attribute as written (float32 attributes read 1e-05 as 9.9999997e-06)."""
        return float(f"{value:.6g}")

    @staticmethod
    def compact(values: Any) -> Any:
        """A spec value as a person writes it: one int for equal pairs, else a list."""
        return spec_value(tuple(int(v) for v in values))

    def padding(self, kernel: list[int], strides: list[int], dilations: list[int]) -> Any:
        """(top, bottom, left, right) of the node's `pads` or `auto_pad`, compacted."""
        auto = self.attr("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            sizes = self.shape()[2:]
            pads = []
            for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
                if size is None:
                    self.fail("auto_pad needs the input's size")
                total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
                small = total // 2
                pads.append((small, total - small) if auto == "SAME_UPPER" else
                            (total - small, small))
            (top, bottom), (left, right) = pads
        elif auto == "VALID":
            top = bottom = left = right = 0
        else:
            top, left, bottom, right = self.attr("pads", [0, 0, 0, 0])
        return spec_value((int(top), int(bottom), int(left), int(right)))

    def channel_vector(self, value: np.ndarray, channels: int) -> np.ndarray | None:
        """A constant that broadcasts along the channel axis only (a scalar, (C,), (C, 1, 1),
        (1, C, 1, 1)...) against the node's input, as a (channels,) vector; else None."""
        rank = len(self.shape())
        if value.ndim > rank:
            return None
        shape = (1,) * (rank - value.ndim) + tuple(value.shape)
        if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
            return None
        return np.broadcast_to(value.reshape(shape[1]), (channels,)).astype(np.float32)

    def affine(self, data: int, scale: np.ndarray | None = None,
               shift: np.ndarray | None = None) -> None:
        """The node's output = input `data` · scale + shift per channel (Mul, Div, Add, Sub
        with a constant): into the bias of a conv or dense layer before it (a shift), into the
        batch norm before it, or else as a batch norm of its own (mean 0, variance 1 - eps)."""
        channels = self.shape(i=data)[1]
        assert channels is not None
        vectors = [None if v is None else self.channel_vector(v, channels)
                   for v in (scale, shift)]
        if any(v is None for v, given in zip(vectors, (scale, shift), strict=True)
               if given is not None):
            self.fail("a constant operand must be a scalar or one value per channel")
        scale_v, shift_v = vectors
        before = self.producer(data)
        alone = before is not None and self.only_consumer(self.node.input[data])
        if alone and before is not None and before.op == "batchnorm":
            if scale_v is not None:
                before.params["weight"] = before.params["weight"] * scale_v
                before.params["bias"] = before.params["bias"] * scale_v
            if shift_v is not None:
                before.params["bias"] = before.params["bias"] + shift_v
            return self.alias(before.name)
        if alone and before is not None and scale_v is None and before.op in ("conv", "dense"):
            bias = before.params.get("bias", np.zeros(channels, np.float32))
            before.params["bias"] = bias + shift_v
            before.args.pop("bias", None)            # (bias: false, written before, goes)
            return self.alias(before.name)
        eps = 1e-5
        self.layer("batchnorm", {}, [self.tensor(data)], {
            "weight": np.ones(channels, np.float32) if scale_v is None else scale_v,
            "bias": np.zeros(channels, np.float32) if shift_v is None else shift_v},
            {"running_mean": np.zeros(channels, np.float32),
             "running_var": np.full(channels, 1 - eps, np.float32)})


def _dotted(text: str) -> str:
    """A valid dotted id from a name: segments split at `.` and `/`, a segment that does not
    start with a letter joined to the one before (`layer1.0.conv1` -> `layer1_0.conv1`)."""
    parts: list[str] = []
    for segment in re.split(r"[./]", text):
        segment = re.sub(r"[^A-Za-z0-9_]", "_", segment)
        if not segment:
            continue
        if IDENT.fullmatch(segment):
            parts.append(segment)
        elif parts:
            parts[-1] += "_" + segment
        else:
            parts.append("_" + segment)
    return ".".join(parts)


def convert(model: Any) -> tuple[Importer, tuple[int, ...], str, list[str]]:
    """The layers of the model's first output (an Importer holding them), the input's
    per-sample shape, the output layer's name and notes for the user."""
    importer = Importer(model)
    notes: list[str] = []
    initial = set(importer.consts)
    inputs = [i for i in model.graph.input if i.name not in importer.consts]
    if len(inputs) != 1:
        raise OnnxImportError(f"the model takes {len(inputs)} inputs "
                              f"({', '.join(i.name for i in inputs)}); cnngraph networks take "
                              "one")
    for batch in batch_sizes(model):
        # shapes give values to Shape nodes, whose folded values give more shapes: to the end
        importer.consts = {k: v for k, v in importer.consts.items() if k in initial}
        importer.shapes, unknown = infer_shapes(model, importer.consts, inputs[0].name, batch)
        while True:
            before = len(importer.consts)
            fold_constants(model, importer.consts, importer.shapes)
            if len(importer.consts) == before:
                break
            importer.shapes, unknown = infer_shapes(model, importer.consts, inputs[0].name,
                                                    batch)
        if not unknown:
            break
    shape = importer.shapes.get(inputs[0].name, ())
    if len(shape) not in (2, 4) or any(d is None for d in shape[1:]):
        raise OnnxImportError(f"input {inputs[0].name} has shape {shape}: cnngraph takes "
                              "(batch, C, H, W) or (batch, features) with sizes fixed after the "
                              "batch axis")
    importer.tensors[inputs[0].name] = "input"
    output = model.graph.output[0].name
    if len(model.graph.output) > 1:
        notes.append(f"the model has {len(model.graph.output)} outputs: imported the first, "
                     f"{output}")
    rules = import_rules()
    for index in sorted(live_nodes(model.graph, output)):
        node = model.graph.node[index]
        importer.node = node
        if all(out in importer.consts for out in node.output):
            continue
        if node.domain not in ("", "ai.onnx"):
            importer.fail(f"ops of domain {node.domain!r} are not ONNX's own")
        rule = rules.get(node.op_type)
        if rule is None:
            importer.fail(f"cnngraph has no layer for ONNX's {node.op_type} (it imports "
                          f"{', '.join(sorted(rules))})")
        rule(importer)
    if output not in importer.tensors or importer.tensors[output] == "input":
        raise OnnxImportError(f"the output {output} is not computed by any layer")
    last = importer.tensors[output]
    if importer.layers[-1].name != last:
        raise OnnxImportError(f"the output {output} is not the last layer computed")
    return importer, tuple(int(d) for d in shape[1:] if d is not None), last, notes


def _header(name: str, input_shape: tuple[int, ...], source: str) -> list[str]:
    return [f"# imported from {source} by cnngraph import", "version: 1", f"name: {flow(name)}",
            f"input: {flow(list(input_shape))}"]


def spec_text(importer: Importer, name: str, input_shape: tuple[int, ...], source: str,
              shapes: dict[str, tuple[int, ...]] | None = None) -> str:
    """The flat spec of the imported layers: each with its graph name as `id`, `from` where its
    input is not the layer above, and (given `shapes`) its output shape in a comment."""
    lines = _header(name, input_shape, source) + ["layers:"]
    previous = "input"
    for layer in importer.layers:
        text = layer_head("  - ", layer.op, layer.args, True)
        lines += [commented(text, shapes[layer.name]) if shapes is not None else text,
                  f"    id: {layer.name}"]
        if layer.inputs != [previous]:
            lines.append(f"    from: {sources_text(layer.inputs)}")
        previous = layer.name
    return "\n".join(lines) + "\n"


def _folded(importer: Importer, flat: Any, name: str, input_shape: tuple[int, ...],
            source: str, folder: Path) -> tuple[str, dict[str, str]] | None:
    """The spec with repeated units as blocks (onnx_blocks.py) and each flat layer's name in
    it, if it expands to the flat network layer for layer; else None."""
    from ..api import load
    from ..errors import SpecError
    lines = folded_layers(importer.layers, [node.shape for node in flat.nodes])
    if lines is None:
        return None
    text = "\n".join(_header(name, input_shape, source) + lines) + "\n"
    draft = folder / f"{name}.folded.yaml"
    draft.write_text(text)
    try:
        net = load(draft)
    except SpecError:
        return None
    if [(n.op, n.shape) for n in net.nodes] != [(n.op, n.shape) for n in flat.nodes]:
        return None
    return text, {old.name: new.name for old, new in zip(flat.nodes, net.nodes, strict=True)}


def import_onnx(path: Path, out_dir: Path, flat: bool = False) -> tuple[Path, Path, Any,
                                                                          list[str]]:
    """Write OUT_DIR/<stem>.yaml and OUT_DIR/<stem>.npz for the ONNX model at `path` (with
    repeated units folded into blocks unless `flat`); returns their paths, the loaded network
    and notes. Nothing is written on an error."""
    import tempfile

    from ..api import load
    from ..train import checkpoint
    path, out_dir = Path(path), Path(out_dir)
    model = read_model(path)
    importer, input_shape, _, notes = convert(model)
    stem = _dotted(path.stem).replace(".", "_") or "imported"
    with tempfile.TemporaryDirectory() as scratch:
        draft = Path(scratch) / f"{stem}.yaml"
        draft.write_text(spec_text(importer, stem, input_shape, path.name))
        net = load(draft)       # a SpecError here is a bug of this importer: let it show
        found = {f"{layer.name}.{k}": tuple(v.shape) for layer in importer.layers
                 for k, v in {**layer.params, **layer.buffers}.items()}
        assert found == {**net.param_shapes(), **net.buffer_shapes()}, \
            f"imported tensors {found} differ from the spec's"
        text = spec_text(importer, stem, input_shape, path.name,
                         {n.name: n.shape for n in net.nodes})
        folded = None if flat else _folded(importer, net, stem, input_shape, path.name,
                                           Path(scratch))
    names = {layer.name: layer.name for layer in importer.layers}   # in the spec written
    if folded is not None:
        text, names = folded
    elif not flat and len(importer.layers) > 1:
        notes.append("no repeated units found (or none that fold exactly): the spec is flat")
    params, buffers = ({f"{names[layer.name]}.{k}": v.astype(np.float32)
                        for layer in importer.layers for k, v in getattr(layer, group).items()}
                       for group in ("params", "buffers"))
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path, weights_path = out_dir / f"{stem}.yaml", out_dir / f"{stem}.npz"
    spec_path.write_text(text)
    net = load(spec_path)
    checkpoint.write(weights_path, params, buffers, {},
                     checkpoint.weights_meta(net, imported_from=path.name))
    return spec_path, weights_path, net, notes
