"""`gemm` callable from @njit code: OpenBLAS sgemm/dgemm through SciPy's Cython BLAS.

Unlike `np.dot` inside njit, it takes leading dimensions (sub-matrices of larger buffers without
copies) and beta (accumulate into C), and allocates nothing: alpha and beta travel as pointers to
stack slots. It calls `numba_xxgemm`, the entry point of Numba's own `np.dot`, by symbol name, so
kernels using it still cache on disk (a ctypes function pointer would not). Arrays are row-major;
row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so the operands swap.
"""
from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import importlib.util
import os
import sys

import numpy as np
import scipy
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.linalg import ensure_blas


def _load_cython_blas() -> None:
    """Load SciPy's Cython BLAS, where Numba's helper library finds sgemm and dgemm.
    Importing `scipy.linalg.cython_blas` by name first runs `scipy.linalg`'s __init__ (its array
    API layers), a noticeable share of a warm first training step; loading the extension module
    from its file costs almost nothing (bench/results/runtime.md). `import scipy.linalg` later
    still works (the package's own imports find the module loaded); where no such file is
    found, the normal import runs."""
    name = "scipy.linalg.cython_blas"
    folder = os.path.join(os.path.dirname(scipy.__file__), "linalg")
    path = next((os.path.join(folder, "cython_blas" + suffix)
                 for suffix in importlib.machinery.EXTENSION_SUFFIXES
                 if os.path.exists(os.path.join(folder, "cython_blas" + suffix))), None)
    if name not in sys.modules and path:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None  # None: a suffix no loader reads
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    ensure_blas()


_load_cython_blas()


def pin_blas_to_one_thread() -> bool:
    """Make SciPy's OpenBLAS single-threaded. The kernels call it from chunk kernels, one per
    core already; a multithreaded BLAS there oversubscribes the cores and OpenBLAS warns it may
    hang (NUMBA_NOTES: 2 BLAS threads inside parallel loops cost ~25 %, and worse here).
    Returns False where SciPy is built against another BLAS, which is then left as it is."""
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    for path in glob.glob(os.path.join(libs, "*openblas*.so*")):
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            if hasattr(lib, symbol):
                getattr(lib, symbol)(1)
                return True
    return False


pin_blas_to_one_thread()

_XXGEMM = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp, types.voidptr,
    types.voidptr, types.intp, types.voidptr, types.intp, types.voidptr, types.voidptr,
    types.intp))
_T, _N = np.int8(ord("t")), np.int8(ord("n"))


@intrinsic
def _by_ref(typingctx, value):
    """A pointer to a stack copy of `value` (allocated once in the function's entry block)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(cgutils.alloca_once_value(builder, args[0]), cgutils.voidptr_t)
    return types.voidptr(value), codegen


@intrinsic
def _data(typingctx, array):
    """The data pointer of an array or array view."""
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.bitcast(ary.data, cgutils.voidptr_t)
    return types.voidptr(array), codegen


def gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """C[m, n] = alpha * op(A) @ op(B) + beta * C, row-major, from @njit code only.

    op(A) is m x k (A stored k x m when trans_a), op(B) is k x n; lda, ldb, ldc are the row
    strides in elements. A, B and C must share C's dtype (float32 or float64). Products of at
    most SMALL_ROWS rows run as loops here (`small_gemm`), the others in OpenBLAS.
    """
    raise TypeError("gemm is callable from @njit code only; use call_gemm from Python")


# OpenBLAS's sgemm is slow for products of a few rows, what dense layers and 1x1 convs of a
# batch of one are (row-major C: a few columns to OpenBLAS, which is column-major). On this
# machine, 1 x 120 x 400 (LeNet's first dense layer): 48 us, these loops 11; 1 x 1000 x 4096:
# 3.7 ms against 0.55; 8 x 784 x 25 (LeNet's first conv, a sample): 16 against 13 us; at 16
# rows OpenBLAS well ahead (bench/results/inference.md).
SMALL_ROWS = 8


@overload(gemm)
def _gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    kind = np.int8(ord("s")) if c.dtype == types.float32 else np.int8(ord("d"))
    scalar = np.float32 if c.dtype == types.float32 else np.float64

    def impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        if m <= SMALL_ROWS:
            # flat views from each matrix's first element to its last (they may be
            # sub-matrices, rows ld apart)
            a_rows, a_width = (k, m) if trans_a else (m, k)
            b_rows, b_width = (n, k) if trans_b else (k, n)
            small_gemm(trans_a, trans_b, m, n, k, scalar(alpha),
                       carray(_data(a), (a_rows - 1) * lda + a_width, scalar), lda,
                       carray(_data(b), (b_rows - 1) * ldb + b_width, scalar), ldb,
                       scalar(beta), carray(_data(c), (m - 1) * ldc + n, scalar), ldc)
            return
        _XXGEMM(kind, _T if trans_b else _N, _T if trans_a else _N, n, m, k,
                _by_ref(scalar(alpha)), _data(b), ldb, _data(a), lda, _by_ref(scalar(beta)),
                _data(c), ldc)
    return impl


@njit(cache=True, fastmath=True, error_model="numpy")
def small_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """`gemm` as loops, on flat views of A, B and C, each order running along the rows that
    are contiguous: op(B) = B as rows of C updated by multiples of B's rows (A's entries
    read down a column when trans_a); op(B) = B^T as dot products of rows."""
    for i in range(m):
        row = c[i * ldc:i * ldc + n]
        if beta == 0:
            row[:] = 0
        elif beta != 1:
            for j in range(n):
                row[j] *= beta
    if not trans_b:
        for i in range(m):
            row = c[i * ldc:i * ldc + n]
            for p in range(k):
                factor = alpha * (a[p * lda + i] if trans_a else a[i * lda + p])
                source = b[p * ldb:p * ldb + n]
                for j in range(n):
                    row[j] += factor * source[j]
        return
    for i in range(m):
        row = c[i * ldc:i * ldc + n]
        for j in range(n):
            column = b[j * ldb:j * ldb + k]
            total = row.dtype.type(0)
            if trans_a:
                for p in range(k):
                    total += a[p * lda + i] * column[p]
            else:
                ours = a[i * lda:i * lda + k]
                for p in range(k):
                    total += ours[p] * column[p]
            row[j] += alpha * total


@njit(cache=True)
def call_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """`gemm` from Python (for tests and benchmarks)."""
    gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
