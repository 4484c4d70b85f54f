"""add on CUDA: the support module's sum and copy kernels, as on the CPU."""
from .cpu import lowering

LOWER = {"add": lowering("cuda")}
