"""What fine-tuning changes in a run: frozen parameters, frozen batch-norm statistics, and
each parameter's learning rate and weight decay.

    train:
      freeze: [stem, layer1.*, fc.bias]     # these parameters do not train
      bn: frozen                            # or {frozen: [layer3.*]}: running statistics
      param_groups:                         # each tensor takes every group that matches it,
        - {match: fc.*, lr_mult: 10}        # later groups over earlier ones, key by key
        - {match: '*.bias', weight_decay: 0}

A pattern is a glob (`*` also crosses dots) matched against a parameter's full name
(`layer1.conv1.weight`), its layer's name and every group the layer sits in (`layer1`,
`layer1.basic2`): `stem` freezes every parameter of the group `stem`, `conv1.weight` one
tensor. A pattern that matches nothing is reported as a warning that names it.

Freezing is PyTorch's `requires_grad = False`: the backward pass computes no gradient for a
frozen parameter, stops below the lowest layer that trains, and the optimiser and its weight
decay leave the tensor bitwise as it was. Batch-norm statistics are governed by `bn` alone (as
in PyTorch, a frozen batch norm's statistics still move unless `bn` freezes them); a frozen
batch norm normalises with its running statistics in training too (`model.eval()` for it, or
Keras's `trainable = False`).
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np

from ..errors import Location, Problem, SpecError
from ..ir import Network, Node
from ..ops import REGISTRY, nearest
from ..ops.base import numel

STATISTICS = ("running_mean", "running_var")


def _names(node: Node, key: str) -> list[str]:
    """What a pattern is matched against for the parameter `key` of `node`: its full name,
    its layer's and every group's above the layer."""
    parts = node.name.split(".")
    return [f"{node.name}.{key}", *(".".join(parts[:k]) for k in range(len(parts), 0, -1))]


def matches(pattern: str, node: Node, key: str) -> bool:
    return any(fnmatchcase(name, pattern) for name in _names(node, key))


@dataclass(frozen=True)
class Settings:
    """Per parameter (full name) of a network, its learning-rate multiplier and weight decay;
    the frozen ones (`Node.frozen`) are left out."""

    lr_mult: dict[str, float]
    weight_decay: dict[str, float]


def _unmatched(net: Network, setting: tuple, pattern: str, candidates) -> Problem:
    hint = nearest(pattern, candidates) or (
        "patterns are globs over layer, group and parameter names (`layer1.*`, "
        "`conv1.weight`); `cnngraph summary` lists the layers")
    return Problem(f"the pattern `{pattern}` matches no layer or parameter",
                   Location(net.file, path=("train", *setting)), hint, severity="warning")


def _params(net: Network) -> list[tuple[Node, str]]:
    return [(node, key) for node in net.nodes for key in node.params]


def _candidates(net: Network) -> set[str]:
    return {name for node, key in _params(net) for name in _names(node, key)}


def frozen_tensors(net: Network, freeze=(), bn="train") -> tuple[set[str], list[Problem]]:
    """The full names of the tensors that `freeze` (patterns) and `bn` ("train", "frozen" or
    {frozen: patterns}) freeze, and a warning per pattern that matches nothing."""
    warnings, frozen = [], set()
    for i, pattern in enumerate(freeze):
        found = {f"{node.name}.{key}" for node, key in _params(net)
                 if matches(pattern, node, key)}
        if not found:
            warnings.append(_unmatched(net, ("freeze", i), pattern, _candidates(net)))
        frozen |= found
    norms = [node for node in net.nodes if STATISTICS[0] in node.buffers]
    patterns = ["*"] if bn == "frozen" else [] if bn == "train" else list(bn["frozen"])
    for i, pattern in enumerate(patterns):
        hit = [node for node in norms if matches(pattern, node, STATISTICS[0])]
        if not hit and bn != "frozen":
            warnings.append(_unmatched(net, ("bn", "frozen", i), pattern,
                                       [node.name for node in norms]))
        frozen |= {f"{node.name}.{key}" for node in hit for key in STATISTICS}
    return frozen, warnings


def settings(net: Network, weight_decay: float = 0.0, decay_bn_bias: bool = True,
             param_groups=()) -> tuple[Settings, list[Problem]]:
    """Each trainable parameter's learning-rate multiplier (1 unless a group sets it) and
    weight decay (`weight_decay`, 0 for those `decay_bn_bias=False` exempts, unless a group
    sets it), and a warning per group that matches nothing."""
    warnings = []
    params = [(node, key) for node, key in _params(net) if key not in node.frozen]
    lr_mult, decay = {}, {}
    for node, key in params:
        exempt = not decay_bn_bias and key in REGISTRY[node.op].decay_exempt
        name = f"{node.name}.{key}"
        lr_mult[name], decay[name] = 1.0, 0.0 if exempt else float(weight_decay)
    for i, group in enumerate(param_groups):
        found = [f"{node.name}.{key}" for node, key in params
                 if matches(group["match"], node, key)]
        if not found:
            warnings.append(_unmatched(net, ("param_groups", i, "match"), group["match"],
                                       _candidates(net)))
        for name in found:
            lr_mult[name] = float(group.get("lr_mult", lr_mult[name]))
            decay[name] = float(group.get("weight_decay", decay[name]))
    return Settings(lr_mult, decay), warnings


def report(net: Network, chosen: Settings, lr: float) -> list[str]:
    """What a run prints when it starts: what is frozen, and where the parameters do not all
    share one learning rate, each distinct pair of learning rate and weight decay with the
    tensors that have it."""
    shapes = net.param_shapes()
    total = sum(numel(s) for s in shapes.values())
    frozen_names = set(net.frozen())
    lines = []
    frozen = [n for n in shapes if n in frozen_names]
    if frozen:
        count = sum(numel(shapes[n]) for n in frozen)
        lines.append(f"frozen: {len(frozen)} of {len(shapes)} parameter tensors, {count:,} of "
                     f"{total:,} values ({_listed(frozen)})")
    statistics = sorted({n.rsplit(".", 1)[0] for n in frozen_names
                         if n.rsplit(".", 1)[1] in STATISTICS})
    if statistics:
        lines.append(f"batch norm with frozen statistics: {len(statistics)} "
                     f"({_listed(statistics)})")
    groups: dict[tuple[float, float], list[str]] = {}
    for name in shapes:
        if name not in frozen_names:
            pair = (chosen.lr_mult[name], chosen.weight_decay[name])
            groups.setdefault(pair, []).append(name)
    if any(mult != 1 for mult, _ in groups):
        lines.append("parameter groups:")
        for (mult, decay), names in groups.items():
            lines.append(f"  lr x{mult:g} ({lr * mult:g}), weight decay {decay:g}: "
                         f"{len(names)} tensor{'s' * (len(names) > 1)} ({_listed(names)})")
    return lines


def prepare(net: Network, config) -> tuple[Network, list[str]]:
    """`net` with the tensors `config` (a TrainConfig) freezes frozen, and the lines a run
    prints as it starts: warnings of patterns that match nothing, then the `report`. Raises
    SpecError where nothing would train."""
    frozen, warnings = frozen_tensors(net, config.freeze, config.bn)
    net = net.with_frozen(frozen)
    if not any(node.trains for node in net.nodes):
        raise SpecError(Problem("`train.freeze` freezes every parameter: nothing would train",
                                Location(net.file, path=("train", "freeze")),
                                "leave at least the head out of the patterns"))
    chosen, unmatched = settings(net, config.weight_decay, config.decay_bn_bias,
                                 config.param_groups)
    lines = [problem.render() for problem in (*warnings, *unmatched)]
    moving = [node.name for node in net.nodes if STATISTICS[0] in node.buffers
              and node.params and not node.trains and STATISTICS[0] not in node.frozen]
    if moving:
        lines.append(f"note: {len(moving)} batch norms with frozen parameters still update "
                     f"their statistics ({_listed(moving)}); `train.bn: frozen` keeps them")
    return net, lines + report(net, chosen, config.lr)


def _listed(names: list[str], shown: int = 4) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f", ... {more} more" if more > 0 else "")


def update_runs(model, weight_decay: float = 0.0, decay_bn_bias: bool = True,
                param_groups=()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The optimiser's per-tensor settings (`settings`) over the flat parameters as runs (on
    the host): where each run ends (exclusive), its weight-decay coefficient and its
    learning-rate multiplier, 0 for frozen tensors (the update skips those runs).
    Neighbouring tensors with the same settings share a run: with one for all there is one."""
    chosen = settings(model.net, weight_decay, decay_bn_bias, param_groups)[0]
    ends: list[int] = []
    pairs: list[tuple[float, float]] = []
    offset = 0
    for name, value in model.params.items():
        pair = (chosen.weight_decay[name], chosen.lr_mult[name]) \
            if name in chosen.lr_mult else (0.0, 0.0)
        offset += value.size
        if pairs and pairs[-1] == pair:
            ends[-1] = offset
        else:
            ends.append(offset)
            pairs.append(pair)
    dtype = model.flat_params.dtype
    return (np.array(ends, np.int64), np.array([p[0] for p in pairs], dtype),
            np.array([p[1] for p in pairs], dtype))
