"""The Python API: `load` a spec into a shape-inferred `Network`."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .infer import infer
from .ir import Network
from .spec.expand import expand_file


def load(path: str | Path, input_shape: tuple[int, ...] | None = None) -> Network:
    """Parse, validate, expand and shape-infer a spec file.

    `input_shape` (C, H, W) overrides the spec's `input`. Raises `SpecError` listing every
    problem found, each with file:line:column, the path in the spec and a hint.
    """
    expanded = expand_file(path)
    if input_shape is not None:
        expanded = replace(expanded, input_shape=tuple(input_shape))
    return infer(expanded)
