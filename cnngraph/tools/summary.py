"""Static analysis of a `Network`: parameters, MACs/FLOPs, memory and receptive field per layer.

Counting is a named policy, printed with the numbers:
  paper  conv and dense multiply-accumulates only, no bias (what the ResNet paper calls FLOPs);
         FLOPs = 2 x MACs.
  full   MACs as `paper`; FLOPs = 2 x MACs + every other op by its documented per-element
         formula (bias, batch norm, activations, pooling, merges, LRN, softmax).
A training step's MACs add, for every conv and dense layer, the grad-weight contraction and,
unless nothing upstream needs a gradient, the grad-input contraction (each as large as the
forward one). Memory for training and inference is counted by `plan.Memory` from the CPU
backend's memory plan of the network as compiled (fused, and folded for inference): the same
figures as `cnngraph compile`.

Receptive field and jump are `infer`'s (a global gate keeps the trunk's, marked as global
context).

A network with heads (outputs besides the main one, such as GoogLeNet's auxiliary classifiers)
is counted as inference runs it: params, MACs and FLOPs are the main output's part; `outputs`
lists each output with what its head adds, and the training figures (train MACs, training
params and memory) include every head.
"""
from __future__ import annotations

from ..ir import MAIN, Network
from ..ops.base import numel
from ..passes.autodiff import needs_grad
from ..passes.plan import OPTIMIZER_SLOTS as OPTIMIZER_SLOTS  # the CLI's --optimizer choices
from ..passes.plan import Memory, compiled_plan, optimizer_slots
from ..runtime.backend import Target, cpu_chunks

POLICIES = ("paper", "full")
DTYPE_BYTES = {"float32": 4, "float64": 8}
FORMAT = "cnngraph-summary/1"


def memory(net: Network, batch: int, dtype: str, training: bool,
           optimizer: str | None = None) -> Memory:
    """Bytes of a step by part (see `plan.Memory`), planned as the CPU backend compiles `net`
    (its target, without loading Numba): what `Model.memory` reports for the same batch, dtype
    and optimizer. Inference of fewer samples than the target's chunks (batch 1 on two cores)
    is planned as the program of its own that runs it (`CpuBackend.small_batch`)."""
    slots = optimizer_slots(net, optimizer)[1] if training else 0
    chunks = cpu_chunks()
    small_batch = not training and batch < chunks
    plan = compiled_plan(net, Target("cpu", chunks), training, small_batch=small_batch)
    return Memory.of(net, plan, batch, DTYPE_BYTES[dtype], slots, small_batch)


def geometry(node) -> str:
    """A windowed layer's kernel, stride, padding, dilation and groups, `7x7 /2 pad 3`; '' for
    other layers."""
    a = node.attrs
    kernel = getattr(a, "kernel", None)
    if not isinstance(kernel, tuple):
        return ""
    parts = [_shape_text(kernel)]
    stride = tuple(getattr(a, "stride", (1, 1)))
    if stride != (1, 1):
        parts.append("/" + _pair_text(stride))
    padding: tuple = getattr(a, "padding", ())
    if any(padding):
        parts.append("pad " + (str(padding[0]) if len(set(padding)) == 1
                               else ",".join(map(str, padding))))
    if tuple(getattr(a, "dilation", (1, 1))) != (1, 1):
        parts.append("dilation " + _pair_text(a.dilation))
    if getattr(a, "groups", 1) != 1:
        parts.append(f"groups {a.groups}")
    return " ".join(parts)


def analyse(net: Network, policy: str = "paper", batch: int = 1, dtype: str = "float32",
            optimizer: str | None = None) -> dict:
    """The summary as data: the documented `cnngraph-summary/1` format that `--json` prints."""
    if policy not in POLICIES:
        raise ValueError(f"unknown counting policy {policy!r}")
    size = DTYPE_BYTES[dtype]
    needs = needs_grad(net)
    layers, totals = [], dict(params=0, frozen_params=0, buffers=0, macs=0, flops=0,
                              train_macs=0)
    activation = 0
    part = _parts(net)
    heads: dict[str, dict] = {o.name: dict(params=0, macs=0) for o in net.outputs}
    for node in net.nodes:
        rf, jump, glob = node.receptive_field, node.jump, node.global_context
        macs = node.cost.macs
        flops = 2 * macs + (node.cost.ops if policy == "full" else 0)
        grad_input = macs if any(needs[i] for i in node.inputs) else 0
        # a frozen weight's gradient is not computed (Node.frozen, train.freeze)
        weight_grad = macs if node.params and "weight" not in node.frozen else 0
        train_macs = macs + (grad_input if needs[node.name] else 0) + weight_grad
        params = sum(numel(s) for s in node.params.values())
        frozen = sum(numel(s) for k, s in node.params.items() if k in node.frozen)
        buffers = sum(numel(s) for s in node.buffers.values())
        act = numel(node.shape) * batch * size
        inferred = part[node.name] == MAIN
        for key, value in (("params", params), ("frozen_params", frozen), ("buffers", buffers),
                           ("macs", macs), ("flops", flops), ("train_macs", train_macs)):
            totals[key] += value if inferred or key == "train_macs" else 0
        heads[part[node.name]]["params"] += params
        heads[part[node.name]]["macs"] += macs
        activation += act if inferred else 0
        layers.append({
            "name": node.name, "op": node.op, "output": part[node.name],
            "inputs": list(node.inputs), "geometry": geometry(node),
            "output_shape": list(node.shape), "params": params, "buffers": buffers,
            "macs": macs, "flops": flops, "train_macs": train_macs, "activation_bytes": act,
            "receptive_field": _numbers(rf), "jump": _numbers(jump),
            "global_context": glob,
        })
    opt_name = optimizer_slots(net, optimizer)[0]
    train = memory(net, batch, dtype, True, optimizer)
    infer = memory(net, batch, dtype, False)
    totals.update(
        activation_bytes=activation,
        param_bytes=totals["params"] * size,
        training_bytes=train.total,
        inference_bytes=infer.total,
        planned_training_arena_bytes=train.arena,
        layers=len(net.nodes),
        training_params=sum(h["params"] for h in heads.values()),
    )
    output = net.node(net.output)
    out_rf, out_glob = output.receptive_field, output.global_context
    return {
        "format": FORMAT, "name": net.name, "file": net.file, "policy": policy, "batch": batch,
        "dtype": dtype, "optimizer": opt_name, "input_shape": list(net.input_shape),
        "output_shape": list(net.node(net.output).shape),
        "receptive_field": _numbers(out_rf), "global_context": out_glob,
        "totals": totals,
        "outputs": [{"name": o.name, "layer": o.node, "output_shape": list(net.shape_of(o.node)),
                     "loss": o.loss, "weight": o.weight, **heads[o.name]} for o in net.outputs],
        "memory": {"training": train.as_dict(), "inference": infer.as_dict()},
        "layers": layers,
        "groups": [{"name": g, "block": b} for g, b in net.groups.items()],
    }


def _parts(net: Network) -> dict[str, str]:
    """Which output each layer belongs to: `main` for the main output's part of the network,
    else the head that needs it (the first, in `net.outputs` order)."""
    owner: dict[str, str] = {}
    for output in net.outputs:
        for node in net.for_output(output.name).nodes:
            owner.setdefault(node.name, output.name)
    return owner


# -- text rendering ---------------------------------------------------------------------------

def memory_line(mode: str, m: dict, optimizer: str) -> str:
    """One planned-memory line, part by part (the order and words of `cnngraph compile`)."""
    parts = [f"params {human_bytes(m['params'])}"]
    if mode == "training":
        parts += [f"grads {human_bytes(m['grads'])}",
                  f"{optimizer} state {human_bytes(m['optimizer_state'])}"]
    elif m["folded"]:
        parts.append(f"folded conv+bn weights {human_bytes(m['folded'])}")
    parts += [f"buffers {human_bytes(m['buffers'])}",
              f"activations, their gradients and workspaces {human_bytes(m['arena'])}"
              if mode == "training" else f"activations and workspaces {human_bytes(m['arena'])}"]
    return f"  planned {mode:<9}  {human_bytes(m['total'])} = " + " + ".join(parts)


def human(n: float, unit: str = "") -> str:
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}" if unit else f"{n:,.0f}"


def human_bytes(n: float) -> str:
    for factor, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {suffix}"
    return f"{n:.0f} B"


def _numbers(pair) -> list[int | float] | None:
    """A receptive field or jump for JSON: whole numbers as ints, fractions (after an upsample)
    as floats."""
    if not pair:
        return None
    return [int(v) if v == int(v) else float(v) for v in pair]


def _number_text(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _pair_text(pair) -> str:
    first, second = (_number_text(v) for v in pair)
    return first if first == second else f"{first}x{second}"


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def _rf_text(row: dict, input_hw) -> str:
    rf = row["receptive_field"]
    if rf is None:
        return "-"
    text = _pair_text(rf)
    text += "*" if input_hw and (rf[0] > input_hw[0] or rf[1] > input_hw[1]) else ""
    return text + ("+" if row.get("global_context") else "")


def _jump_text(row: dict) -> str:
    j = row["jump"]
    if j is None:
        return "-"
    return _pair_text(j)


# The table's columns, by name (`cnngraph summary --columns`), and their headers
COLUMNS = {"layer": "Layer", "op": "Op", "kernel": "Kernel", "output": "Output",
           "params": "Params", "share": "% params", "buffers": "Buffers", "macs": "MACs",
           "activations": "Activations", "rf": "RF", "jump": "Jump", "connected": "Connected to"}
LEFT = ("layer", "op", "kernel", "output", "connected")


def default_columns(data: dict) -> tuple[str, ...]:
    """Every column; `connected` only where the network branches (as Keras shows it for
    functional models, not sequential ones)."""
    previous, branches = "input", False
    for row in data["layers"]:
        branches |= row["inputs"] != [previous]
        previous = row["name"]
    return tuple(c for c in COLUMNS if c != "connected" or branches)


def render(data: dict, depth: int | None = None, columns: tuple[str, ...] | None = None) -> str:
    """A table like `torchinfo` and `caffe time`: one row per layer, blocks indented with
    subtotals; with `depth`, groups nested deeper are collapsed into one row. `columns`
    (names of COLUMNS) chooses the columns, `default_columns` by default."""
    columns = columns or default_columns(data)
    labels = {g["name"]: g["block"] for g in data["groups"]}
    input_hw = data["input_shape"][1:] if len(data["input_shape"]) == 3 else None
    total_params = max(data["totals"]["training_params"], 1)
    rows: list[dict[str, str]] = []
    layers = data["layers"]

    def group_rows(prefix: str) -> list[dict]:
        return [r for r in layers if r["name"].startswith(prefix + ".")]

    def cells(name: str, op: str, last: dict, members: list[dict], kernel: str,
              connected: str) -> dict[str, str]:
        params = sum(r["params"] for r in members)
        return {"layer": name, "op": op, "kernel": kernel,
                "output": _shape_text(last["output_shape"]), "params": f"{params:,}",
                "share": f"{100 * params / total_params:.1f}" if params else "",
                "buffers": f"{sum(r['buffers'] for r in members):,}",
                "macs": human(sum(r["macs"] for r in members)),
                "activations": human_bytes(sum(r["activation_bytes"] for r in members)),
                "rf": _rf_text(last, input_hw), "jump": _jump_text(last),
                "connected": connected}

    open_groups: list[str] = []
    collapsed: set[str] = set()
    for row in layers:
        parts = row["name"].split(".")
        chain = [".".join(parts[:i]) for i in range(1, len(parts))]
        while open_groups and open_groups[-1] not in chain:
            open_groups.pop()
        hidden = False
        for level, group in enumerate(chain):
            if group in collapsed:
                hidden = True
                break
            if group in open_groups:
                continue
            members = group_rows(group)
            rows.append(cells("  " * level + group.split(".")[-1], labels.get(group, "group"),
                              members[-1], members, "", ""))
            open_groups.append(group)
            if depth is not None and level + 1 >= depth:
                collapsed.add(group)
                hidden = True
                break
        if hidden:
            continue
        # the layers it reads, named from its own block when they are in it
        within = ".".join(parts[:-1]) + "."
        inputs = [i.removeprefix(within) if chain else i for i in row["inputs"]]
        rows.append(cells("  " * len(chain) + parts[-1], row["op"], row, [row],
                          row["geometry"], ", ".join(inputs)))
    header = dict(COLUMNS)
    widths = {c: max(len(r[c]) for r in [*rows, header]) for c in columns}

    def line(row: dict[str, str]) -> str:
        return "  ".join(row[c].ljust(widths[c]) if c in LEFT else row[c].rjust(widths[c])
                         for c in columns).rstrip()

    rule = "-" * len(line(header))
    t = data["totals"]
    policy = ("paper: conv and dense multiply-adds only, FLOPs = 2 x MACs"
              if data["policy"] == "paper" else
              "full: FLOPs = 2 x MACs + bias, norm, activation, pooling and merge ops")
    out = [f"{data['name']}  ({data['file']})",
           f"input {_shape_text(data['input_shape'])}, output {_shape_text(data['output_shape'])}, "
           f"batch {data['batch']}, {data['dtype']}",
           rule, line(header), rule, *(line(r) for r in rows), rule]
    out += [
        f"Params:      {t['params'] - t['frozen_params']:,} trainable, "
        + (f"{t['frozen_params']:,} frozen (train.freeze), " if t["frozen_params"] else "")
        + f"{t['buffers']:,} non-trainable buffers ({human_bytes(t['param_bytes'])})",
        f"MACs:        {t['macs']:,} ({human(t['macs'])})   counting policy {policy}",
        f"FLOPs:       {t['flops']:,} ({human(t['flops'])})",
        f"Train step:  {t['train_macs']:,} MACs ({human(t['train_macs'])}): forward + grad-input "
        "+ grad-weight contractions",
        f"Memory:      forward activations {human_bytes(t['activation_bytes'])} (every "
        "layer's output, nothing shared)",
        memory_line("training", data["memory"]["training"], data["optimizer"]),
        memory_line("inference", data["memory"]["inference"], data["optimizer"]),
    ]
    if len(data["outputs"]) > 1:
        out.append(f"Outputs:     the figures above are the main output's part; training runs "
                   f"every head too ({t['training_params']:,} params in all)")
        for o in data["outputs"]:
            what = "main output" if o["name"] == MAIN else "head adds"
            out.append(f"  {o['name']:<10} {o['layer']} {_shape_text(o['output_shape'])}, "
                       f"{o['loss']} x {o['weight']:g}; {what} {o['params']:,} params, "
                       f"{human(o['macs'])} MACs")
    rf = data["receptive_field"]
    if rf and input_hw and (rf[0] > input_hw[0] or rf[1] > input_hw[1]):
        out.append(f"Note:        * receptive field larger than the {_shape_text(input_hw)} input "
                   f"(the output's is {_pair_text(rf)}); the part beyond the input sees padding")
    if any(r.get("global_context") for r in layers):
        out.append("Note:        + also sees the whole map through a global gate (a (C,1,1) "
                   "branch broadcast by `mul`, as in squeeze-excite); RF and jump are the trunk's")
    return "\n".join(out)
