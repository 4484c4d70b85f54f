"""What a backend's conv, dense or batch-norm lowering adds when an activation is fused into it
(`passes/fuse.py`), shared by the backends: the activation's code for the forward kernel, which
applies it in its output loop, and, ahead of the producer's own backward, the activation's
backward (from the saved output, into a workspace) by the backend's `pointwise_bwd_<backend>`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lowering import IO, Scratch
from . import ROWS

CODES = {row.name: code for code, row in enumerate(ROWS, start=1)}    # 0: no activation


@dataclass(frozen=True)
class Epilogue:
    name: str | None       # the fused activation, if any
    argument: float
    backend: str

    @property
    def args(self) -> str:
        """The forward kernel's trailing arguments: activation code and argument."""
        return f"{CODES.get(self.name, 0)}, {self.argument}"

    def backward(self, io: IO) -> tuple[list[str], str]:
        """Lines that turn dy into the gradient of the producer's raw output, and its name."""
        if self.name is None:
            return [], io.dy
        raw = io.scratch("d_raw")
        return [f"pointwise_bwd_{self.backend}({self.name!r}, {io.y}, {io.y}, {io.dy}, {raw}, "
                f"{self.argument})"], raw

    def scratch(self, node) -> dict[str, Scratch]:
        return {} if self.name is None else {
            "d_raw": Scratch(node.shape, per_sample=True, backward_only=True)}

    def reads(self) -> tuple[str, ...]:
        return () if self.name is None else ("output",)


def epilogue(node, backend: str) -> Epilogue:
    name, argument = node.activation or (None, 0.0)
    return Epilogue(name, argument, backend)
