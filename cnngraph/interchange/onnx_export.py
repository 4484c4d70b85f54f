"""ONNX export: a network and its weights as an ONNX model that onnxruntime, Netron or a browser
runtime reads.

The graph is the network itself, in inference form: its input `input` is what `model.forward`
takes (an optional `Normalizer` is prepended as nodes only when asked), its output `output` is
the main output's logits, with a dynamic batch dimension. Every layer is an ONNX node named by
its dotted name; its output tensor carries the same name. Initializers are exactly cnngraph's
parameters and buffers, under their names and in their layout (`conv1.weight`,
`batchnorm1.running_mean`): a constant an op needs besides them (a shape, a pad, a slope's axes)
is an initializer named `<layer>/<what>`.

Each op says how it exports in its own folder: `ops/<op>/onnx.py` defines
`export(node, inputs, graph) -> str`, the name of the tensor the layer's output is, built with
`Graph`'s methods (no ONNX import there). An op folder without one is an `ExportError` naming
the layer, and nothing is written.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CnngraphError
from ..ir import INPUT, MAIN, Network
from ..ops import REGISTRY
from ..passes.fold import fold_batchnorm

FIRST_OPSET = 13
LAST_OPSET = 21      # the newest the tests run every op at (onnxruntime lags onnx's newest)
DEFAULT_OPSET = 17
OUTPUT = "output"
INSTALL = "ONNX export needs the `onnx` extra: pip install 'cnngraph[onnx]'"


class ExportError(CnngraphError):
    """A network or an option that cannot become an ONNX file; nothing was written."""


@dataclass
class Graph:
    """The ONNX graph an export builds: nodes as (op type, inputs, output, name, attributes)
    and initializers by name. The ops' export rules add to it."""

    opset: int
    values: dict[str, np.ndarray]             # the network's parameters and buffers, by name
    renamed: dict[str, str] = field(default_factory=dict)   # layer -> its parameters' prefix
    nodes: list[tuple[str, list[str], str, str, dict[str, Any]]] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    dtype: Any = np.float32                   # the network's float type

    def param(self, node: Any, key: str) -> str:
        """The initializer of a parameter or buffer of `node` (`<layer>.<key>`)."""
        name = f"{self.renamed.get(node.name, node.name)}.{key}"
        self.initializers[name] = self.values[name]
        return name

    def has_param(self, node: Any, key: str) -> bool:
        return key in node.params or key in node.buffers

    def scalar(self, name: str, value: float) -> str:
        """A scalar initializer of the network's float type."""
        return self.constant(name, value, self.dtype)

    def constant(self, name: str, values: Any, dtype: Any = np.int64) -> str:
        """An initializer of values an op needs (a shape, pads, axes), named `name`."""
        self.initializers[name] = np.asarray(values, dtype)
        return name

    def add(self, op_type: str, inputs: list[str], output: str, name: str | None = None,
            **attributes: Any) -> str:
        """A node computing `output`, named `name` or else as the layer whose output it is
        (a conv that took its folded batch norm's place keeps its own name); an input "" is
        absent."""
        name = name or self.renamed.get(output, output)
        self.nodes.append((op_type, list(inputs), output, name, attributes))
        return output


def rule(op: str):
    """The export rule of an op: `ops/<op>/onnx.py`'s `export`."""
    try:
        module = importlib.import_module(REGISTRY[op].package + ".onnx")
    except ModuleNotFoundError:
        return None
    return module.export


def folded(net: Network, values: dict[str, np.ndarray]) -> tuple[Network, dict[str, str],
                                                                 dict[str, np.ndarray]]:
    """Batch norm folded into the convs before it (`--fold-bn`): the network in which each such
    conv took its batch norm's place (and name), the conv's name for each, and the values with
    the conv's weight and bias replaced by the folded ones (in float64, rounded once)."""
    net, folds = fold_batchnorm(net)
    values = dict(values)
    renamed = {}
    for fold in folds:
        renamed[fold.norm] = fold.conv
        scale = values[f"{fold.norm}.weight"].astype(np.float64) / np.sqrt(
            values[f"{fold.norm}.running_var"].astype(np.float64) + fold.eps)
        weight = values[f"{fold.conv}.weight"]
        bias = values.get(f"{fold.conv}.bias", np.zeros(len(scale), weight.dtype))
        values[f"{fold.conv}.weight"] = (weight * scale.reshape(-1, *[1] * (weight.ndim - 1))
                                         ).astype(weight.dtype)
        values[f"{fold.conv}.bias"] = ((bias - values[f"{fold.norm}.running_mean"]) * scale
                                       + values[f"{fold.norm}.bias"]).astype(weight.dtype)
    return net, renamed, values


def export(net: Network, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray],
           opset: int = DEFAULT_OPSET, output: str = MAIN, fold_bn: bool = False,
           normalizer: Any = None, with_normalization: bool = False) -> Any:
    """The ONNX `ModelProto` of `net`'s output `output` (heads it does not need are dropped)
    with these weights. `normalizer` (a train.loader.Normalizer) goes into the metadata, and
    with `with_normalization` before the first layer as nodes, so the model takes raw pixels."""
    try:
        import onnx
        from onnx import helper
    except ImportError:
        raise ExportError(INSTALL) from None
    if not FIRST_OPSET <= opset <= LAST_OPSET:
        raise ExportError(f"opset {opset} is not supported: cnngraph exports opsets "
                          f"{FIRST_OPSET} to {LAST_OPSET}")
    if with_normalization and normalizer is None:
        raise ExportError("--with-normalization needs the normaliser of a trained checkpoint: "
                          "pass --weights")
    net = net.for_output(output)
    values = {**params, **buffers}
    renamed: dict[str, str] = {}
    if fold_bn:
        net, renamed, values = folded(net, values)
    dtype = next(iter(values.values())).dtype if values else np.dtype(np.float32)
    graph = Graph(opset, values, renamed, dtype=dtype)
    tensors = {INPUT: INPUT}
    if with_normalization:
        tensors[INPUT] = _normalization(graph, normalizer, len(net.input_shape))
    for node in net.nodes:
        export_rule = rule(node.op)
        if export_rule is None:
            raise ExportError(f"layer `{node.name}` ({node.op}) has no ONNX form: cnngraph "
                              f"cannot export `{node.op}` yet; nothing was written")
        tensors[node.name] = export_rule(node, [tensors[t] for t in node.inputs], graph)
    _name_output(graph, tensors[net.output])

    element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    batch = "batch"
    inputs = [helper.make_tensor_value_info(INPUT, element, [batch, *net.input_shape])]
    outputs = [helper.make_tensor_value_info(OUTPUT, element, [batch, *net.output_shape])]
    nodes = [helper.make_node(op_type, node_inputs, [node_output], name=name, **attributes)
             for op_type, node_inputs, node_output, name, attributes in graph.nodes]
    initializers = [onnx.numpy_helper.from_array(np.asarray(value, order="C"), name)
                    for name, value in graph.initializers.items()]
    model = helper.make_model(
        helper.make_graph(nodes, net.name, inputs, outputs, initializers),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="cnngraph",
        producer_version=_version(), doc_string=f"{net.name}: exported by cnngraph")
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    helper.set_model_props(model, _metadata(net, normalizer, with_normalization, fold_bn))
    return model


def _normalization(graph: Graph, normalizer: Any, rank: int) -> str:
    """Nodes computing (x / scale - mean) / std per channel, as `Normalizer` does."""
    axes = (-1,) + (1,) * (rank - 1)
    mean = np.asarray(normalizer.mean).reshape(axes)
    std = np.asarray(normalizer.std).reshape(axes)
    scaled = graph.add("Div", [INPUT, graph.scalar("normalizer.scale", normalizer.scale)],
                       "normalizer/scaled")
    centred = graph.add("Sub", [scaled, graph.constant("normalizer.mean", mean, graph.dtype)],
                        "normalizer/centred")
    return graph.add("Div", [centred, graph.constant("normalizer.std", std, graph.dtype)],
                     "normalizer")


def _name_output(graph: Graph, tensor: str) -> None:
    """The main output's tensor renamed `output` (the graph's output), wherever it appears."""
    def name(t: str) -> str:
        return OUTPUT if t == tensor else t
    if tensor == INPUT or all(out != tensor for _, _, out, _, _ in graph.nodes):
        graph.add("Identity", [tensor], OUTPUT)
        return
    graph.nodes = [(op_type, [name(t) for t in ins], name(out), node_name, attributes)
                   for op_type, ins, out, node_name, attributes in graph.nodes]


def _version() -> str:
    """The installed cnngraph's version (read from its metadata: importing the package here
    would import the runtime, which imports this module)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("cnngraph")
    except PackageNotFoundError:
        return "unknown"


def _metadata(net: Network, normalizer: Any, applied: bool, fold_bn: bool) -> dict[str, str]:
    layout = {3: "NCHW", 1: "NC"}.get(len(net.input_shape), "N" + "?" * len(net.input_shape))
    props = {"cnngraph.spec": net.name, "cnngraph.spec_version": "1",
             "cnngraph.version": _version(), "input_layout": layout,
             "input_shape": json.dumps(list(net.input_shape)),
             "batch_norm": "folded into the convs before it" if fold_bn else "as nodes"}
    if normalizer is not None:
        props["normalizer"] = json.dumps({"mean": list(normalizer.mean),
                                          "std": list(normalizer.std),
                                          "scale": normalizer.scale})
        props["normalizer_applied"] = "in the graph" if applied else \
            "no: feed (x / scale - mean) / std per channel"
    return props


def save(model: Any, path: str | Path) -> None:
    """Check the model (`onnx.checker`, full) and write it; on failure nothing is written."""
    import onnx
    onnx.checker.check_model(model, full_check=True)
    try:
        Path(path).write_bytes(model.SerializeToString())
    except OSError as error:
        raise ExportError(f"{path}: could not write the model ({error.strerror or error})"
                          ) from None


def run_onnxruntime(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output for x in onnxruntime (the `onnx` extra)."""
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(INSTALL) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return np.asarray(session.run([OUTPUT], {INPUT: x})[0])


def verify(model: Any, compiled: Any, normalizer: Any = None, with_normalization: bool = False,
           output: str = MAIN, batch: int = 3, seed: int = 0) -> tuple[float, float]:
    """Max |difference| and max |difference| / max |value| between onnxruntime's output and
    cnngraph's own forward (`compiled`: a compiled model with the exported weights) on a random
    batch: raw pixels through the normaliser where the graph holds it, standard normal inputs
    otherwise."""
    rng = np.random.default_rng(seed)
    shape = (batch, *compiled.net.input_shape)
    if with_normalization:
        x = rng.uniform(0, normalizer.scale, shape).astype(np.float32)
        ours = compiled.forward(normalizer(x), output=output)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
        ours = compiled.forward(x, output=output)
    theirs = run_onnxruntime(model, x)
    difference = float(np.abs(theirs - ours.reshape(theirs.shape)).max())
    return difference, difference / max(float(np.abs(ours).max()), 1e-30)
