"""Shape inference: expanded graph -> `Network`, every tensor's shape, parameters, cost and
receptive field known.

Receptive field and jump (cumulative stride) along H and W, per output:
    window op:  rf' = rf + dilation * (kernel - 1) * jump,   jump' = jump * stride
    global op:  rf' = rf + (H - 1) * jump                    (the output sees all of its input)
    merge:      the largest over the incoming paths
"""
from __future__ import annotations

from .errors import ProblemList
from .ir import INPUT, Network, Node
from .ops import REGISTRY
from .ops.base import GLOBAL, ShapeError, Window, fmt_shape
from .spec.expand import Expanded


def _field(op_window, in_shape, rf, jump):
    if op_window is None or rf is None:
        return rf, jump
    if op_window == GLOBAL:
        _, h, w = in_shape
        return (rf[0] + (h - 1) * jump[0], rf[1] + (w - 1) * jump[1]), (jump[0] * h, jump[1] * w)
    assert isinstance(op_window, Window)
    k, s, d = op_window.kernel, op_window.stride, op_window.dilation
    return ((rf[0] + d[0] * (k[0] - 1) * jump[0], rf[1] + d[1] * (k[1] - 1) * jump[1]),
            (jump[0] * s[0], jump[1] * s[1]))


def infer(expanded: Expanded) -> Network:
    """Infer shapes and costs; raises SpecError with every shape problem found."""
    problems = ProblemList()
    shapes = {INPUT: expanded.input_shape}
    spatial = len(expanded.input_shape) == 3
    fields = {INPUT: ((1, 1), (1, 1)) if spatial else (None, None)}
    nodes = []
    for raw in expanded.nodes:
        if raw.args is None or any(i not in shapes for i in raw.inputs):
            continue  # already reported, or downstream of a reported problem
        op = REGISTRY[raw.op]
        ins = [shapes[i] for i in raw.inputs]
        try:
            attrs = op.resolve(op.attrs(raw.args), ins)
            shape = op.shape(attrs, ins)
        except ShapeError as exc:
            message = exc.message
            if len(ins) > 1:
                message += " (inputs: " + ", ".join(
                    f"`{i}` {fmt_shape(s)}" for i, s in zip(raw.inputs, ins, strict=True)) + ")"
            problems.add(message, raw.loc, exc.hint, raw.trace)
            continue
        rfs = [fields[i] for i in raw.inputs]
        rf, jump = rfs[0]
        if rf is not None and len(rfs) > 1:
            rf = (max(r[0][0] for r in rfs), max(r[0][1] for r in rfs))
            jump = (max(r[1][0] for r in rfs), max(r[1][1] for r in rfs))
        rf, jump = _field(op.window(attrs, ins), ins[0], rf, jump)
        shapes[raw.name] = shape
        fields[raw.name] = (rf, jump)
        nodes.append(Node(
            name=raw.name, op=raw.op, attrs=attrs, args=raw.args, inputs=raw.inputs,
            in_shapes=tuple(ins), shape=shape, params=op.params(attrs, ins),
            buffers=op.buffers(attrs, ins), cost=op.cost(attrs, ins, shape),
            receptive_field=rf, jump=jump, loc=raw.loc))
    problems.raise_if_any()
    return Network(name=expanded.name, file=expanded.file, input_shape=expanded.input_shape,
                   nodes=tuple(nodes), output=expanded.output, groups=expanded.groups,
                   train=expanded.train)
