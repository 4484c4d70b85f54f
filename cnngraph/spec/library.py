"""The blocks a spec can use: its own `blocks:` and those of the files it includes, each
name defined once. An included file holds shared blocks (`version: 1` and `blocks`) and may
include others; a file included twice is read once, and a file that includes itself, directly
or not, is an error."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import Location, ProblemList, SpecError
from ..ops import REGISTRY
from . import schema
from .yamlload import LDict, LList, ldict, llist, load_yaml

MAX_INCLUDE_DEPTH = 16


@dataclass
class BlockDef:
    name: str
    params: LDict
    layers: LList
    loc: Location


class Library:
    def __init__(self, problems: ProblemList, root: Path):
        self.problems = problems
        self.blocks: dict[str, BlockDef] = {}
        self.loaded: set[Path] = {root}      # the spec file and every file included so far

    def error(self, message: str, loc: Location, hint: str = "") -> None:
        self.problems.add(message, loc, hint)

    def add_blocks(self, doc: LDict) -> None:
        blocks = doc.get("blocks") or ldict({}, doc.loc)
        for name, body in blocks.items():
            loc = blocks.loc_of(name)
            if name in REGISTRY:
                self.error(f"block `{name}` has the name of an op", loc,
                           "rename the block; op names are reserved")
            elif name in self.blocks:
                self.error(f"block `{name}` is defined twice (first at "
                           f"{self.blocks[name].loc})", loc, "rename one of them")
            else:
                params = body.get("params") or ldict({}, loc)
                self.blocks[name] = BlockDef(name, params, body["layers"], loc)

    def load_includes(self, doc: LDict, real: Path, shown: str,
                      stack: tuple[Path, ...]) -> None:
        includes = doc.get("include") or []
        if isinstance(includes, str):
            includes = llist([includes], doc.loc_of("include"))
        for i, rel in enumerate(includes):
            loc = includes.loc_of(i) if isinstance(includes, LList) else doc.loc_of("include")
            target = (real.parent / rel).resolve()
            target_shown = os.path.normpath(os.path.join(os.path.dirname(shown), rel))
            if target in stack:
                chain = " -> ".join(p.name for p in stack + (target,))
                self.error(f"recursive include: {chain}", loc,
                           "an included file must not include, directly or not, the file "
                           "that includes it")
                continue
            if target in self.loaded or len(stack) >= MAX_INCLUDE_DEPTH:
                continue
            self.loaded.add(target)
            try:
                lib = load_yaml(target, target_shown)
            except SpecError as exc:
                if not _exists(target):
                    self.error(f"included file `{rel}` not found", loc,
                               f"paths are relative to {os.path.dirname(shown) or '.'}")
                elif exc.problems[0].loc is None or not exc.problems[0].loc.line:
                    # refused as a whole (a device, not YAML, too large): say where it was named
                    first = exc.problems[0]
                    self.error(f"cannot include `{rel}`: {first.message}", loc, first.hint)
                else:
                    self.problems.extend(exc)      # a YAML error inside it, located there
                continue
            if not isinstance(lib, LDict) or "version" not in lib:
                # Not a cnngraph file: nothing of its content is shown (it may hold secrets).
                self.error(f"`{rel}` is not a cnngraph spec file", loc,
                           "an included file holds shared blocks: a mapping with `version: 1` "
                           "and `blocks`")
                continue
            found = schema.check(lib, schema.LIBRARY, Location(target_shown), "an included file")
            if found:
                self.problems.extend(found)
                continue
            self.load_includes(lib, target, target_shown, stack + (target,))
            self.add_blocks(lib)


def _exists(path: Path) -> bool:
    """Whether a file is there; False for a name the file system cannot hold (too long), which
    `exists()` raises on."""
    try:
        return path.exists()
    except OSError:
        return False
