"""add on the CPU: the sum kernel forward; its gradient is dy for every input (copied)."""
from .lower import lowering

LOWER = {"add": lowering("cpu")}
