"""Shape inference: expanded graph -> `Network`, every tensor's shape, parameters, cost and
receptive field known.

Receptive field and jump (cumulative stride) along H and W, per output:
    window op:  rf' = rf + dilation * (kernel - 1) * jump,   jump' = jump * stride
                (a stride below one, after an upsample, makes both fractions of a pixel)
    global op:  rf' = rf + (H - 1) * jump                    (the output sees all of its input)
    merge:      the largest over the incoming paths, leaving out global gates
A global gate is a (C, 1, 1) input broadcast over a (C, H, W) map (squeeze-and-excitation's
`mul`): it sees the whole map, but it scales each position of the trunk without moving it, so
the merge keeps the trunk's field and jump, and its output is marked `global_context` (until a
global op, whose field covers the whole map anyway).
"""
from __future__ import annotations

from fractions import Fraction

from ..errors import Problem, ProblemList
from ..ir import INPUT, Network, Node, Pixels
from ..ops import REGISTRY
from ..ops.base import GLOBAL, MAX_ELEMENTS, Shape, ShapeError, Window, fmt_shape, numel
from ..spec.expand import Expanded

# A tensor's (receptive field, jump, sees global context); no field nor jump for vectors that
# never had a spatial map.
Field = tuple[Pixels | None, Pixels | None, bool]


def _field(op_window: Window | str | None, in_shape: Shape, rf: Pixels | None,
           jump: Pixels | None) -> tuple[Pixels | None, Pixels | None]:
    if op_window is None or rf is None or jump is None:
        return rf, jump
    if op_window == GLOBAL:
        _, h, w = in_shape
        return (rf[0] + (h - 1) * jump[0], rf[1] + (w - 1) * jump[1]), (jump[0] * h, jump[1] * w)
    assert isinstance(op_window, Window)
    k, s, d = op_window.kernel, op_window.stride, op_window.dilation
    return ((_exact(rf[0] + d[0] * (k[0] - 1) * jump[0]),
             _exact(rf[1] + d[1] * (k[1] - 1) * jump[1])),
            (_exact(jump[0] * s[0]), _exact(jump[1] * s[1])))


def _exact(value: int | Fraction) -> int | Fraction:
    """A whole number as an int; a fraction (after an upsample) as a Fraction."""
    return int(value) if isinstance(value, Fraction) and value.denominator == 1 else value


def _merged_field(fields: list[Field], in_shapes: list[Shape], shape: Shape) -> Field:
    """(receptive field, jump, sees global context) where inputs meet (see the module's doc)."""
    seen_global = any(f[2] for f in fields)
    if len(fields) == 1 or fields[0][0] is None:
        return (*fields[0][:2], seen_global)
    gates = [len(s) == 3 and s[1:] == (1, 1) and shape[1:] != (1, 1) for s in in_shapes]
    # a tensor lacks a field only in a network fed a vector, where all do (returned above)
    trunk = [(f_rf, f_jump) for (f_rf, f_jump, _), gate in zip(fields, gates, strict=True)
             if not gate and f_rf is not None and f_jump is not None]
    rf = (max(f_rf[0] for f_rf, _ in trunk), max(f_rf[1] for f_rf, _ in trunk))
    jump = (max(f_jump[0] for _, f_jump in trunk), max(f_jump[1] for _, f_jump in trunk))
    return rf, jump, seen_global or len(trunk) < len(fields)


def _too_large(what: str, shape: Shape) -> ShapeError | None:
    if numel(shape) <= MAX_ELEMENTS:
        return None
    return ShapeError(f"{what} {fmt_shape(shape)} has {numel(shape):.3g} elements: expected at "
                      f"most {MAX_ELEMENTS:,} per sample, received {numel(shape):,}",
                      "check the sizes (`out`, `kernel`, `input`) for a typo")


def _sizes(shape: Shape, params: dict[str, Shape]) -> None:
    """Bound every tensor, so that counts, memory and kernel indices stay finite and exact."""
    error = _too_large("the output", shape)
    for name, param in params.items():
        error = error or _too_large(f"the parameter `{name}`", param)
    if error:
        raise error


def channels_last(shape: Shape) -> str:
    """A hint if an (H, W, C) input was written where cnngraph reads (C, H, W), else ''."""
    if len(shape) != 3 or shape[2] not in (1, 3, 4) or min(shape[0], shape[1]) <= 4:
        return ""
    fixed = [shape[2], shape[0], shape[1]]
    return (f"`input` {list(shape)} looks channels-last (Keras's [H, W, C]); cnngraph's input "
            f"is [C, H, W], as PyTorch's: write `input: {fixed}`")


def _warnings(expanded: Expanded, nodes: list[Node],
              lints: list[Problem]) -> tuple[Problem, ...]:
    found: list[Problem] = []
    hint = channels_last(expanded.input_shape)
    if hint:
        found.append(Problem(f"`input` {list(expanded.input_shape)} has "
                             f"{expanded.input_shape[0]} channels of "
                             f"{expanded.input_shape[1]}x{expanded.input_shape[2]}",
                             expanded.input_loc, hint, severity="warning"))
    found += lints
    last = nodes[-1] if nodes else None
    ending = REGISTRY[last.op].ending if last is not None else None
    if last is not None and ending is not None and last.name == expanded.output:
        found.append(Problem(ending[0], last.loc, ending[1], severity="warning"))
    return tuple(found)


def infer(expanded: Expanded) -> Network:
    """Infer shapes and costs; raises SpecError with every shape problem found."""
    problems = ProblemList()
    too_large = _too_large("`input`", expanded.input_shape)
    if too_large:
        problems.add(too_large.message, expanded.input_loc, too_large.hint)
        problems.raise_if_any()
    lints: list[Problem] = []
    shapes = {INPUT: expanded.input_shape}
    spatial = len(expanded.input_shape) == 3
    fields: dict[str, Field] = {INPUT: ((1, 1), (1, 1), False) if spatial else (None, None, False)}
    nodes: list[Node] = []
    for raw in expanded.nodes:
        if raw.args is None or any(i not in shapes for i in raw.inputs):
            continue  # already reported, or downstream of a reported problem
        op = REGISTRY[raw.op]
        ins = [shapes[i] for i in raw.inputs]
        try:
            attrs = op.resolve(op.attrs(raw.args), ins)
            shape = op.shape(attrs, ins)
            params = op.params(attrs, ins)
            _sizes(shape, params)
        except ShapeError as exc:
            message = exc.message
            if len(ins) > 1:
                message += " (inputs: " + ", ".join(
                    f"`{i}` {fmt_shape(s)}" for i, s in zip(raw.inputs, ins, strict=True)) + ")"
            problems.add(message, raw.loc, exc.hint, raw.trace)
            continue
        lints += [Problem(message, raw.loc, hint, raw.trace, "warning")
                  for message, hint in op.lint(attrs, ins)]
        window = op.window(attrs, ins)
        rf, jump, seen_global = _merged_field([fields[i] for i in raw.inputs], ins, shape)
        rf, jump = _field(window, ins[0], rf, jump)
        seen_global = seen_global and window != GLOBAL
        shapes[raw.name] = shape
        fields[raw.name] = (rf, jump, seen_global)
        nodes.append(Node(
            name=raw.name, op=raw.op, attrs=attrs, args=raw.args, inputs=raw.inputs,
            in_shapes=tuple(ins), shape=shape, params=params,
            buffers=op.buffers(attrs, ins), cost=op.cost(attrs, ins, shape),
            receptive_field=rf, jump=jump, global_context=seen_global, loc=raw.loc))
    if problems and channels_last(expanded.input_shape):
        # The shape errors are most likely a consequence: say so on the first of them.
        first = problems.problems[0]
        problems.problems[0] = Problem(first.message, first.loc, "; ".join(
            filter(None, (first.hint, channels_last(expanded.input_shape)))), first.trace)
    problems.raise_if_any()
    return Network(name=expanded.name, file=expanded.file, input_shape=expanded.input_shape,
                   nodes=tuple(nodes), output=expanded.output, groups=expanded.groups,
                   train=expanded.train, params=expanded.params, heads=expanded.heads,
                   warnings=_warnings(expanded, nodes, lints))
