"""A spec's outputs and their losses.

The last layer of the top-level `layers` makes the main output, `main`. A layer (or block,
`when`, `parallel`...) with `output: NAME` makes a further output, a head: it is fed like any
layer, and the layers after it continue from the tensor before it, so a head branches off the
trunk without `id`/`from` bookkeeping. Training minimises the weighted sum of every output's
loss, given in the spec's `train:` section:

    train:
      loss: cross_entropy                  # the main output's (the default)
      losses:
        aux1: {loss: cross_entropy, weight: 0.3}

A head switched off (`when: false`) makes no output; its `losses` entry is then unused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, ProblemList
from ..ir import MAIN, Output
from ..ops import nearest
from .yamlload import LDict, ldict

DEFAULT_LOSS = "cross_entropy"
AUX_WEIGHT = 0.3     # GoogLeNet's auxiliary classifiers (Szegedy et al. 2014, section 5)


@dataclass
class Heads:
    """The outputs `output:` keys declared during expansion."""

    made: dict[str, tuple[str, Location]] = field(default_factory=dict)   # name -> tensor, loc
    dropped: set[str] = field(default_factory=set)       # declared, but made nothing

    def declare(self, name: Any, tensor: str | None, loc: Location,
                problems: ProblemList, trace: Any = ()) -> None:
        if not isinstance(name, str) or not name.isidentifier() or name == MAIN:
            problems.add(f"invalid output name {name!r}", loc,
                         "an output is named by letters, digits and `_`; `main` is the name of "
                         "the last layer's output", trace)
        elif name in self.made:
            problems.add(f"the output `{name}` is declared twice (first at "
                         f"{self.made[name][1]})", loc,
                         "output names are global: a block used twice names its head by a "
                         "parameter (`output: $name`)", trace)
        elif tensor is None:
            self.dropped.add(name)
        else:
            self.made[name] = (tensor, loc)


def check_heads(heads: Heads, consumers: dict[str, list[tuple[str, Location]]],
                problems: ProblemList) -> None:
    """A head's tensor ends it: it feeds no other layer (its gradient is its loss's alone)."""
    for name, (tensor, _) in heads.made.items():
        users = consumers.get(tensor, [])
        if users:
            problems.add(f"the output `{name}` also feeds `{users[0][0]}`", users[0][1],
                         "an output ends its head; take `from:` the layer before it instead")


def resolve_outputs(train: Any, main: str, heads: Heads, problems: ProblemList,
                    fallback: Location) -> tuple[Output, ...]:
    """Every output with its loss and weight: `main` first, then the heads in spec order."""
    train = train if isinstance(train, LDict) else ldict({}, fallback)
    losses = train.get("losses")
    losses = losses if isinstance(losses, LDict) else ldict({}, fallback)
    known = [MAIN, *heads.made]
    for key in losses:
        if key not in known and key not in heads.dropped:
            hint = nearest(key, known)
            problems.add(f"`train.losses` names `{key}`, which is no output", losses.key_loc(key),
                         (hint + " " if hint else "") + "outputs: "
                         + ", ".join(f"`{k}`" for k in known)
                         + "; a layer with `output: NAME` makes one")
    main_entry = losses.get(MAIN) or {}
    if "loss" in train and "loss" in main_entry and train["loss"] != main_entry["loss"]:
        problems.add(f"two losses for the main output: `loss: {train['loss']}` and "
                     f"`losses.main.loss: {main_entry['loss']}`", losses.loc_of(MAIN),
                     "keep one of them")
    outputs = [Output(MAIN, main, train.get("loss", main_entry.get("loss", DEFAULT_LOSS)),
                      float(main_entry.get("weight", 1.0)), train.loc_of("loss")
                      if "loss" in train else None)]
    for name, (tensor, loc) in heads.made.items():
        entry = losses.get(name)
        if entry is None:
            problems.add(f"the output `{name}` has no loss", loc,
                         f"add `{name}: {{loss: {DEFAULT_LOSS}, weight: {AUX_WEIGHT}}}` under "
                         "`losses:` in the spec's `train:` section (every output is trained "
                         "by its own weighted loss)")
            continue
        outputs.append(Output(name, tensor, entry["loss"], float(entry.get("weight", 1.0)),
                              loc))
    return tuple(outputs)
