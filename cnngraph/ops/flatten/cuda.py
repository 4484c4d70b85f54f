"""flatten on CUDA: the support module's copy kernel, as on the CPU."""
from .cpu import lowering

LOWER = {"flatten": lowering("cuda")}
