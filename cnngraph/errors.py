"""Errors a user can cause, with the place in their files that caused them.

A `SpecError` holds one or more `Problem`s, so a stage can report every mistake it found rather
than stopping at the first. The CLI prints them without a traceback; anything else that raises is
a bug in cnngraph.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Where a value sits in a spec: mapping keys and list indices, outermost first.
SpecPath = tuple[str | int, ...]


def format_path(path: SpecPath) -> str:
    """`('layers', 3, 'conv', 'kernel')` -> `layers[3].conv.kernel`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Location:
    """A place in a spec file: 1-based line and column, and the path to the value in the spec."""

    file: str
    line: int = 0
    column: int = 0
    path: SpecPath = ()

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file

    def at(self, *parts: str | int) -> Location:
        """The same place with the spec path extended (for values without a mark of their own)."""
        return Location(self.file, self.line, self.column, self.path + parts)


# (block name, where it was used) of each block call on the way to a layer, outermost first.
Trace = tuple[tuple[str, Location], ...]


@dataclass(frozen=True)
class Problem:
    """One finding in a spec. An `error` stops the spec from loading; a `warning` is a valid
    spec that is probably not what was meant (it is kept on the `Network` and printed)."""

    message: str
    loc: Location | None = None
    hint: str = ""
    # Call sites of the blocks (outermost first) through which the faulty layer was reached.
    trace: Trace = ()
    severity: str = "error"   # or "warning"

    def render(self) -> str:
        kind = self.severity
        head = f"{self.loc}: {kind}: {self.message}" if self.loc else f"{kind}: {self.message}"
        lines = [head]
        if self.loc and self.loc.path:
            lines.append(f"  at {format_path(self.loc.path)}")
        for block, site in reversed(self.trace):
            lines.append(f"  in block `{block}` used at {site}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class CnngraphError(Exception):
    """Base of the errors that are the user's to fix; printed without a traceback."""

    exit_code = 1

    def render(self) -> str:
        return str(self)


class SpecError(CnngraphError):
    """One or more problems in a spec (syntax, schema, structure or shapes)."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class DataError(CnngraphError):
    """A data file that cannot be used: names the file and what is wrong with it."""


class DeviceError(CnngraphError):
    """A backend asked for on a machine that cannot run it."""

    def __init__(self, message: str, hint: str = ""):
        self.message, self.hint = message, hint
        super().__init__(self.render())

    def render(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")


@dataclass
class ProblemList:
    """Collects problems across a stage; `raise_if_any` turns them into one SpecError."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, loc: Location | None = None, hint: str = "",
            trace: Trace = ()) -> None:
        self.append(Problem(message, loc, hint, trace))

    def append(self, problem: Problem) -> None:
        """Keep a problem unless the same one (message, place, hint) is already listed: a layer
        inside `repeat`, or a block used several times, must not print its error again."""
        key = (problem.message, problem.loc, problem.hint)
        if all((p.message, p.loc, p.hint) != key for p in self.problems):
            self.problems.append(problem)

    def extend(self, error: SpecError | list[Problem]) -> None:
        for problem in error.problems if isinstance(error, SpecError) else error:
            self.append(problem)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)
