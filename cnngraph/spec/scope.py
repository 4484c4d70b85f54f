"""Where names resolve during expansion: a naming scope (see `expand`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Location


@dataclass
class Scope:
    prefix: str
    counters: dict[str, int]            # auto-named layers so far, by base name
    ids: dict[str, str]                 # id -> the tensor it names
    parent: Scope | None
    env: dict[str, Any]                 # the block parameters' values
    trace: tuple[tuple[str, Location], ...]     # the block uses this scope is inside
    active_blocks: tuple[str, ...] = ()

    def lookup(self, ident: str, outputs: dict[str, str] | None = None) -> str | None:
        """The tensor an id names; failing that, a generated name (`conv2`, `branch1.conv1`,
        `basic2`) relative to this scope or an enclosing one, among the layers made so far."""
        scope: Scope | None = self
        while scope is not None:
            if ident in scope.ids:
                return scope.ids[ident]
            scope = scope.parent
        scope = self
        while scope is not None and outputs:
            if scope.prefix + ident in outputs:
                return outputs[scope.prefix + ident]
            scope = scope.parent
        return None

    def visible_ids(self) -> list[str]:
        names: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            names |= set(scope.ids)
            scope = scope.parent
        return sorted(names)

    def same_names(self) -> Scope:
        """A nested scope for ids that names layers in this one (repeat iterations, `when`)."""
        return Scope(self.prefix, self.counters, {}, self, self.env, self.trace,
                     self.active_blocks)

    def auto_name(self, base: str) -> str:
        self.counters[base] = self.counters.get(base, 0) + 1
        return f"{self.prefix}{base}{self.counters[base]}"
