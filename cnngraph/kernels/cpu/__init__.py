"""CPU kernels: Numba-compiled, cached on disk next to their source."""
