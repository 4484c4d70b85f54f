"""The layering of cnngraph, checked on its source: `python -m cnngraph.tools.layers` prints
every violation and exits 1 if there is one (tests/tools/test_layers.py runs it).

Every module under the package is parsed with `ast`, and every import statement in it counts,
wherever it stands (module level, inside a function, under `if TYPE_CHECKING`): a function-level
import is still a dependency, only a later one. An import names the module it reaches
(`from . import schema` reaches `spec.schema`; `from ..ops import REGISTRY` reaches
`ops/__init__.py`); the packages above it, which Python also runs, are not counted, or every
module would depend on `cnngraph/__init__.py`. The rules:

  layers     the compiler's layers (spec, passes, the ops' contracts and lowerings, kernels)
             reach nothing of the runtime, the tools or the trainer, directly or through others;
  cycles     no two modules reach each other (strongly connected components of the graph);
  numba      the modules `cnngraph summary` and `check` need reach no `numba` import;
  size       no module is longer than MAX_LINES lines.
"""
from __future__ import annotations

import ast
import sys
from collections import deque
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

MAX_LINES = 500
# paths relative to the package folder (fnmatch: `*` also matches across folders)
BELOW_RUNTIME = ("spec/*", "passes/*", "ops/*/__init__.py", "ops/*/lower.py", "ops/base.py",
                 "ops/lowering.py", "kernels/*")
ABOVE = ("runtime", "tools", "train")         # subpackages the layers below must not reach
NUMBA_FREE = ("ops/*/lower.py", "ops/base.py", "ops/lowering.py", "spec/*", "passes/*",
              "tools/summary.py")


@dataclass(frozen=True)
class Module:
    name: str                  # dotted; a package's `__init__.py` is named by the package
    path: str                  # relative to the package folder, with `/`
    lines: int
    imports: frozenset[str]    # the dotted names it imports, resolved to absolute names


def _imported(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The absolute names a module's import statements reach: a `from x import y` reaches
    the module `x.y` when there is one, else `x` itself."""
    names: set[str] = set()
    for statement in ast.walk(tree):
        if isinstance(statement, ast.Import):
            names.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                parts = name.split(".")
                anchor = parts[:len(parts) - statement.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in statement.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in known else base)
    return names


def modules(package: Path) -> dict[str, Module]:
    """Every module under a package folder, by dotted name."""
    paths = sorted(package.rglob("*.py"))

    def dotted(path: Path) -> str:
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    known = {dotted(path) for path in paths}
    found = {}
    for path in paths:
        source = path.read_text(encoding="utf-8")
        name = dotted(path)
        imports = _imported(ast.parse(source, str(path)), name, path.name == "__init__.py", known)
        found[name] = Module(name, path.relative_to(package).as_posix(),
                             len(source.splitlines()), frozenset(imports))
    return found


def _internal(module: Module, graph: dict[str, Module]) -> list[str]:
    return sorted(name for name in module.imports if name in graph and name != module.name)


def _path_to(start: str, graph: dict[str, Module], goal) -> list[str] | None:
    """The shortest chain of imports from `start` to a module for which `goal(module)` holds
    (breadth first), or None."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        name = queue.popleft()
        if goal(graph[name]):
            chain = []
            at: str | None = name
            while at is not None:
                chain.append(at)
                at = came_from[at]
            return chain[::-1]
        for target in _internal(graph[name], graph):
            if target not in came_from:
                came_from[target] = name
                queue.append(target)
    return None


def cycles(graph: dict[str, Module]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, with an
    explicit stack: no recursion limit on a long chain of imports)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(_internal(graph[root], graph)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            name, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[name])
                if low[name] == index[name]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == name:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(_internal(graph[target], graph))))
            elif target in on_stack:
                low[name] = min(low[name], index[target])
    return sorted(found)


def _matches(module: Module, patterns) -> bool:
    return any(fnmatch(module.path, pattern) for pattern in patterns)


def violations(package: Path) -> list[str]:
    """Every broken rule of the package in folder `package`, one line each."""
    graph = modules(package)
    above = tuple(f"{package.name}.{name}" for name in ABOVE)
    found = []
    for module in graph.values():
        if _matches(module, BELOW_RUNTIME):
            chain = _path_to(module.name, graph, lambda m: m.name.startswith(above))
            if chain:
                found.append(f"layers: {module.path} reaches {chain[-1]}: "
                             + " -> ".join(chain))
        if _matches(module, NUMBA_FREE):
            chain = _path_to(module.name, graph, lambda m: any(
                name == "numba" or name.startswith("numba.") for name in m.imports))
            if chain:
                found.append(f"numba: {module.path} imports numba: " + " -> ".join(chain))
        if module.lines > MAX_LINES:
            found.append(f"size: {module.path} has {module.lines} lines (at most {MAX_LINES})")
    for component in cycles(graph):
        found.append("cycle: " + ", ".join(component))
    return sorted(found)


def main() -> int:
    found = violations(Path(__file__).resolve().parents[1])
    print("\n".join(found) if found else "layers: no violations")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
