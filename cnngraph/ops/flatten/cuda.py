"""flatten on CUDA: the support module's copy kernel, as on the CPU."""
from .lower import lowering

LOWER = {"flatten": lowering("cuda")}
