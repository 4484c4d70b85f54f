"""add on CUDA: the support module's sum and copy kernels, as on the CPU."""
from .lower import lowering

LOWER = {"add": lowering("cuda")}
