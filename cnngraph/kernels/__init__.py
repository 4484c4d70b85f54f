"""Leaf kernel libraries shared by the ops: BLAS, im2col, reductions (per target)."""
