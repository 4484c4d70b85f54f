"""Reading an ONNX graph for import (onnx_import.py): the file with its checks, constant
folding, shape inference with the batch axis fixed, and which nodes the output needs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CnngraphError
from .onnx_export import INSTALL


class OnnxImportError(CnngraphError):
    """A model, node or attribute that cannot become a spec; nothing was written."""


def read_model(path: Path) -> Any:
    """The ONNX model at `path`, with its external data (which must lie in its folder)."""
    try:
        import onnx
        from onnx import external_data_helper
    except ImportError:
        raise OnnxImportError(INSTALL.replace("export", "import")) from None
    path = Path(path)
    if not path.is_file():
        raise OnnxImportError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:         # protobuf's DecodeError and others
        raise OnnxImportError(f"{path}: not an ONNX model ({str(error).splitlines()[0]})"
                              ) from None
    if not model.graph.node:
        raise OnnxImportError(f"{path}: not an ONNX model (no graph: truncated, or another "
                              "kind of file)")
    folder = path.resolve().parent
    for tensor in external_data_helper._get_all_tensors(model):
        if external_data_helper.uses_external_data(tensor):
            info = external_data_helper.ExternalDataInfo(tensor)
            target = (folder / info.location).resolve()
            where = "outside the model's folder" if folder not in target.parents else \
                "that does not exist" if not target.is_file() else ""
            if where:
                raise OnnxImportError(f"{path}: tensor {tensor.name} refers to external data "
                                      f"{info.location!r} {where}; the data must lie in the "
                                      "model's folder")
    try:
        external_data_helper.load_external_data_for_model(model, str(folder))
    except Exception as error:
        raise OnnxImportError(f"{path}: its external data cannot be read ({error})") from None
    return model


# Which inputs of an op carry data (the rest are shapes, pads, scales: read as constants).
DATA_INPUTS = {"Reshape": (0,), "Slice": (0,), "Pad": (0,), "Resize": (0,), "Upsample": (0,),
               "Split": (0,), "Clip": (0,), "Squeeze": (0,), "Unsqueeze": (0,),
               "ReduceMean": (0,), "ReduceMax": (0,)}


def live_nodes(graph: Any, output: str) -> set[int]:
    """The nodes the output needs through data inputs: not those that only compute shapes
    (torch's Shape-Gather-Concat before a flattening Reshape), nor other outputs' nodes."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    live: set[int] = set()
    todo = [output]
    while todo:
        index = producer.get(todo.pop())
        if index is None or index in live:
            continue
        live.add(index)
        node = graph.node[index]
        wanted = DATA_INPUTS.get(node.op_type, range(len(node.input)))
        todo.extend(node.input[i] for i in wanted if i < len(node.input) and node.input[i])
    return live


def fold_constants(model: Any, consts: dict[str, np.ndarray],
                   shapes: dict[str, tuple[int | None, ...]]) -> None:
    """Into `consts`: the value of every Constant node, of every Shape node whose input's
    shape is known, and of every node whose inputs are all constants (run by onnx's reference
    evaluator)."""
    from onnx import helper, numpy_helper
    opset = opset_of(model)
    for node in model.graph.node:
        if all(out in consts for out in node.output):
            continue                              # folded in an earlier round
        attributes = {a.name: a for a in node.attribute}
        if node.op_type == "Constant":
            value = next(a for a in node.attribute if a.name.startswith("value"))
            consts[node.output[0]] = np.asarray(
                numpy_helper.to_array(value.t) if value.name == "value" else
                helper.get_attribute_value(value))
        elif node.op_type == "Shape" and None not in shapes.get(node.input[0], (None,)):
            shape = np.array(shapes[node.input[0]], np.int64)
            start, end = (helper.get_attribute_value(attributes[key]) if key in attributes
                          else default for key, default in (("start", 0), ("end", len(shape))))
            consts[node.output[0]] = shape[start:end]
        elif node.input and all(not t or t in consts for t in node.input) \
                and node.op_type != "Dropout":
            feeds = {t: consts[t] for t in node.input if t}
            for name, value in zip(node.output, _evaluate(node, feeds, opset), strict=False):
                consts[name] = np.asarray(value)


def opset_of(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)


def _evaluate(node: Any, feeds: dict[str, np.ndarray], opset: int) -> list[Any]:
    """The node's outputs for constant inputs, by onnx's reference evaluator, in a model of
    the graph's opset (given the node alone, it runs the newest version of the op)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    graph = helper.make_graph(
        [node], "constant", [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(
            value.dtype), value.shape) for name, value in feeds.items()],
        [helper.make_tensor_value_info(name, 0, None) for name in node.output if name])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return list(ReferenceEvaluator(model).run(None, feeds))


def infer_shapes(model: Any, consts: dict[str, np.ndarray], input_name: str, batch_size: int
                 ) -> tuple[dict[str, tuple[int | None, ...]], int]:
    """Every tensor's shape, with a dynamic batch axis taken as `batch_size`: so that the
    shape computations of a dynamic export (Shape, Gather, Concat before a Reshape) have
    values; and how many node outputs' shapes stay unknown."""
    import onnx
    from onnx import numpy_helper
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    # the small constants folded so far (shapes, sizes, pads) stand in for the nodes that
    # compute them, so that inference sees their values (its own propagation stops at many)
    small = {name for name, value in consts.items() if value.size <= 64}
    kept = [node for node in fixed.graph.node if not (set(node.output) <= small)]
    known = {i.name for i in fixed.graph.initializer}
    computed = {out for node in fixed.graph.node for out in node.output}
    fixed.graph.initializer.extend(numpy_helper.from_array(np.asarray(consts[name]), name)
                                   for name in sorted((small - known) & computed))
    del fixed.graph.node[:]
    fixed.graph.node.extend(kept)
    for info in fixed.graph.input:
        if info.name == input_name and info.type.tensor_type.shape.dim:
            batch = info.type.tensor_type.shape.dim[0]
            if not batch.HasField("dim_value"):
                batch.dim_value = batch_size
    del fixed.graph.value_info[:]                       # an export's symbolic guesses
    for info in fixed.graph.output:
        info.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception as error:
        raise OnnxImportError(f"the model's shapes cannot be inferred ({error})") from None
    graph = inferred.graph
    shapes = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        if not info.type.tensor_type.HasField("shape"):
            continue                                     # rank unknown
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                  for d in dims)
    outputs = {out for node in fixed.graph.node for out in node.output}
    return shapes, sum(name not in shapes or None in shapes[name] for name in outputs)


def batch_sizes(model: Any) -> list[int]:
    """Batch sizes to infer shapes with: 1, then any leading size of a constant Reshape
    target (a dynamic-batch export that a traced `view(batch, ...)` tied to its example
    batch after all)."""
    from onnx import numpy_helper
    constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    found = {int(constants[node.input[1]].reshape(-1)[0]) for node in model.graph.node
             if node.op_type == "Reshape" and node.input[1] in constants
             and constants[node.input[1]].size > 0}
    return [1] + sorted(size for size in found if size > 1)
