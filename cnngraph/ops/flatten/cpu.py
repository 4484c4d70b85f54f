"""flatten on the CPU: a copy in each direction (the memory order is already C, H, W)."""
from .lower import lowering

LOWER = {"flatten": lowering("cpu")}
