"""`direct_tile` and `direct_sums`: register-tiled micro-kernels of convolutions with few output
channels, from @njit code.

A convolution on flat planes (ops/conv/cpu/flat.py) is, for output channel o and flat output
position p,

    out[o, p] = sum over taps t of  w[o, t] * src[offsets[t] + p]

where offsets[t] is where tap t's slice of the padded input starts. im2col copies those slices
into a matrix for a GEMM; with few output channels (LeNet's 6 and 16) the copies cost as much as
the GEMM, and OpenBLAS reaches only ~28 GFLOP/s a core on so few rows. This kernel reads the
slices in place instead: a tile of up to ROWS output channels by two SIMD vectors of positions
keeps its ROWS x 2 accumulators in registers over all taps, each tap one load per vector and one
broadcast weight per row (12 accumulators, 2 loads and a broadcast: 15 of the 16 AVX2 registers).
LeNet's second conv, one sample's 16 x 150 x 136 products on one thread: 77 GFLOP/s against
im2col and OpenBLAS's 25 (bench/direct_kernels.py, bench/results/kernels.md).

The weight gradient's products run the other way, summed over positions:

    sums[t, o] += dy[o, p] * src[offsets[t] + p]   over p

`direct_sums` keeps a tile of up to SUM_TAPS x SUM_ROWS such sums as vectors (each lane
summing some of the positions) and adds them, still vectors, into `sums` (taps x outputs
x lanes), which a chunk keeps over all its samples; `fold_lanes` adds the lanes up once, at
the end.

Numba has no SIMD vector type, and LLVM does not keep a tile of accumulators in registers
across a loop written with arrays, so the kernel is an intrinsic: LLVM IR built here, with
`<8 x float>` (`<4 x double>`) values and the `llvm.fma` intrinsic.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.funcdesc import default_mangler
from numba.extending import intrinsic

ROWS = 6                # output channels a tile holds at most
VECTORS = 2             # SIMD vectors of positions a tile holds
SUM_TAPS, SUM_ROWS = 3, 4   # a tile of direct_sums: 12 accumulators, 3 + 4 loads a position
VECTOR_BYTES = 32       # AVX2
TILE_BYTES = VECTORS * VECTOR_BYTES     # a tile's positions, in bytes


def lanes(dtype) -> int:
    """Values in one SIMD vector of `dtype` (a NumPy or Numba float type)."""
    return VECTOR_BYTES // np.dtype(str(dtype) if isinstance(dtype, types.Type) else dtype).itemsize


class _Code:
    """LLVM IR helpers of one kernel: its vector type, loads, stores, FMA and broadcast."""

    def __init__(self, context, builder, dtype):
        self.builder = builder
        self.lanes = lanes(dtype)
        self.scalar = context.get_value_type(dtype)
        self.vector = ir.VectorType(self.scalar, self.lanes)
        self.fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vector, [self.vector] * 3),
            f"llvm.fma.v{self.lanes}{'f32' if dtype == types.float32 else 'f64'}")
        self.zero = ir.Constant(self.vector, [ir.Constant(self.scalar, 0.0)] * self.lanes)

    def at(self, pointer, *offsets):
        """pointer + the sum of offsets (values, or Python ints)."""
        for offset in offsets:
            pointer = self.builder.gep(pointer, [offset if isinstance(offset, ir.Value)
                                                 else ir.Constant(ir.IntType(64), offset)])
        return pointer

    def load(self, pointer):
        """The vector at `pointer`, aligned or not."""
        return self.builder.load(self.builder.bitcast(pointer, self.vector.as_pointer()),
                                 align=1)

    def store(self, value, pointer):
        self.builder.store(value, self.builder.bitcast(pointer, self.vector.as_pointer()),
                           align=1)

    def broadcast(self, value, vector=None):
        """A vector (of the kernel's type, or `vector`) with every lane `value`."""
        vector = self.vector if vector is None else vector
        lanes_zero = ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count)
        undefined = ir.Constant(vector, ir.Undefined)
        return self.builder.shuffle_vector(self.builder.insert_element(
            undefined, value, ir.Constant(ir.IntType(32), 0)), undefined, lanes_zero)

    def accumulators(self, count):
        """`count` vectors of zeros in stack slots, which LLVM promotes to registers."""
        return [cgutils.alloca_once_value(self.builder, self.zero) for _ in range(count)]

    def add_product(self, slot, a, b):
        self.builder.store(self.builder.call(self.fma, [a, b, self.builder.load(slot)]), slot)

    def cases(self, selector, keys, body):
        """switch (selector) over the Python ints `keys`, `body(key)` building each case."""
        builder = self.builder
        done = builder.append_basic_block("tile.done")
        switch = builder.switch(selector, done)
        for key in keys:
            block = builder.append_basic_block(f"tile.case{key}")
            switch.add_case(ir.Constant(selector.type, key), block)
            builder.position_at_end(block)
            body(key)
            builder.branch(done)
        builder.position_at_end(done)


def _floats(*arrays) -> bool:
    return all(isinstance(a, types.Array) for a in arrays) and arrays[0].dtype in (
        types.float32, types.float64) and all(a.dtype == arrays[0].dtype for a in arrays)


def _unpack(context, builder, signature, args):
    """Each argument as an array structure (arrays) or an intp value (integers)."""
    values = []
    for ty, value in zip(signature.args, args, strict=True):
        if isinstance(ty, types.Array):
            values.append(context.make_array(ty)(context, builder, value))
        else:
            values.append(context.cast(builder, value, ty, types.intp))
    return values


def _outlined(name, build):
    """An intrinsic's codegen that calls `build(context, builder, signature, args)` from a
    function of its own that LLVM may not inline, built once per module: an intrinsic's IR is
    otherwise emitted, and optimised, at every call site, and each kernel's switch holds 6 or 12
    tiles (`direct_tile` calls its tile twice: compiling it took 1.18 -> 0.67 s, `direct_sums`
    1.99 -> 1.44 s; their speed did not change, bench/direct_kernels.py)."""
    def codegen(context, builder, signature, args):
        function_type = ir.FunctionType(ir.VoidType(), [a.type for a in args])
        function = cgutils.get_or_insert_function(
            builder.module, function_type, default_mangler(f"cnngraph.{name}", signature.args))
        if function.is_declaration:
            function.attributes.add("noinline")
            function.linkage = "internal"
            body = ir.IRBuilder(function.append_basic_block("entry"))
            build(context, body, signature, list(function.args))
            body.ret_void()
        builder.call(function, args)
        return context.get_dummy_value()
    return codegen


def _row_stride(builder, array, dim=0):
    """A dimension's stride of an array structure, in elements (the first's: its rows')."""
    return builder.sdiv(builder.extract_value(array.strides, dim), array.itemsize)


@intrinsic
def _tile(typingctx, out, w, o0, rows, src, offsets, tap0, p0):
    """out[o0 + m, p0 : p0 + width] = sum over t < w.shape[1] of w[o0 + m, t] *
    src[offsets[tap0 + t] + p0 : ... + width], for m < rows (1 to ROWS), width = VECTORS
    vectors. Rows of out and w may be any distance apart, each contiguous; src and offsets
    are contiguous. Nothing is bounds-checked."""
    if not _floats(out, w, src):
        return None

    def codegen(context, builder, signature, args):
        out_a, w_a, o0_i, rows_i, src_a, offsets_a, tap0_i, p0_i = _unpack(
            context, builder, signature, args)
        code = _Code(context, builder, signature.args[0].dtype)
        taps = cgutils.unpack_tuple(builder, w_a.shape, 2)[1]
        ldw, ldo = _row_stride(builder, w_a), _row_stride(builder, out_a)
        offset_type = signature.args[5].dtype
        offsets_at = code.at(offsets_a.data, tap0_i)
        src_at = code.at(src_a.data, p0_i)

        def rows_of(count):
            sums = [code.accumulators(VECTORS) for _ in range(count)]
            w_rows = [code.at(w_a.data, builder.mul(builder.add(o0_i, ir.Constant(
                o0_i.type, m)), ldw)) for m in range(count)]
            with cgutils.for_range(builder, taps) as loop:
                offset = context.cast(builder, builder.load(code.at(offsets_at, loop.index)),
                                      offset_type, types.intp)
                xs = [code.load(code.at(src_at, offset, v * code.lanes))
                      for v in range(VECTORS)]
                for m in range(count):
                    weight = code.broadcast(builder.load(code.at(w_rows[m], loop.index)))
                    for v in range(VECTORS):
                        code.add_product(sums[m][v], weight, xs[v])
            for m in range(count):
                row = code.at(out_a.data, builder.mul(builder.add(o0_i, ir.Constant(
                    o0_i.type, m)), ldo), p0_i)
                for v in range(VECTORS):
                    code.store(builder.load(sums[m][v]), code.at(row, v * code.lanes))

        code.cases(rows_i, range(1, ROWS + 1), rows_of)
    return types.none(out, w, o0, rows, src, offsets, tap0, p0), _outlined("tile", codegen)


@njit(cache=True, inline="always")
def tile_width(array):
    """The positions one tile of `direct_tile` spans, for `array`'s dtype: VECTORS vectors."""
    return TILE_BYTES // array.itemsize


@njit(cache=True, nogil=True)
def direct_tile(out, w, o0, rows, src, offsets, tap0, length):
    """out[o0:o0 + rows, :length] = the products above, for all `length` positions, by tiles of
    at most ROWS output channels (rows >= 1). Past `length` nothing is written; reads reach
    src[offsets[tap0 + t] + length - 1] at most. Lengths below a tile's width run as loops."""
    width = tile_width(out)
    if length < width:
        for m in range(o0, o0 + rows):
            weights, row = w[m], out[m, :length]
            row[:] = 0
            for t in range(w.shape[1]):
                at = offsets[tap0 + t]
                source = src[at:at + length]
                for p in range(length):
                    row[p] += weights[t] * source[p]
        return
    for first in range(o0, o0 + rows, ROWS):
        count = min(ROWS, o0 + rows - first)
        for p0 in range(0, length - width + 1, width):
            _tile(out, w, first, count, src, offsets, tap0, p0)
        if length % width:      # the last tile overlaps the one before: written twice, alike
            _tile(out, w, first, count, src, offsets, tap0, length - width)


@intrinsic
def _sums_tile(typingctx, sums, t0, taps, o0, outs, dy, src, offsets, length):
    """sums[t0 + i, o0 + j, :lanes] += the products dy[o0 + j, p] * src[offsets[t0 + i] + p]
    over p < length (>= lanes), each lane summing some of the positions, for i < taps (1 to
    SUM_TAPS), j < outs (1 to SUM_ROWS). The positions past the last whole vector are taken by
    one more vector, length - lanes on, the lanes it shares with the one before masked out of
    dy. sums is taps x outputs x (at least lanes), its last dimension contiguous; dy's rows may
    be any distance apart, each contiguous. Nothing is bounds-checked."""
    if not _floats(sums, dy, src):
        return None

    def codegen(context, builder, signature, args):
        sums_a, t0_i, taps_i, o0_i, outs_i, dy_a, src_a, offsets_a, length_i = _unpack(
            context, builder, signature, args)
        code = _Code(context, builder, signature.args[0].dtype)
        tap_stride, output_stride = (_row_stride(builder, sums_a, d) for d in (0, 1))
        ldy = _row_stride(builder, dy_a)
        offset_type = signature.args[7].dtype
        n = ir.Constant(length_i.type, code.lanes)
        last = builder.sub(length_i, n)
        # the last vector's lanes that the whole vectors did not cover: lane >= lanes - tail
        tail = builder.srem(length_i, n)
        lane = ir.VectorType(ir.IntType(64), code.lanes)
        uncovered = builder.icmp_signed(">=", ir.Constant(lane, list(range(code.lanes))),
                                        code.broadcast(builder.sub(n, tail), lane))

        def tile_of(key):
            count_t, count_o = divmod(key, SUM_ROWS + 1)
            acc = [code.accumulators(count_o) for _ in range(count_t)]
            sources = [code.at(src_a.data, context.cast(builder, builder.load(code.at(
                offsets_a.data, builder.add(t0_i, ir.Constant(t0_i.type, i)))), offset_type,
                types.intp)) for i in range(count_t)]
            dys = [code.at(dy_a.data, builder.mul(builder.add(o0_i, ir.Constant(
                o0_i.type, j)), ldy)) for j in range(count_o)]

            def products(at, mask=None):
                xs = [code.load(code.at(source, at)) for source in sources]
                for j in range(count_o):
                    gradient = code.load(code.at(dys[j], at))
                    if mask is not None:
                        gradient = builder.select(mask, gradient, code.zero)
                    for i in range(count_t):
                        code.add_product(acc[i][j], xs[i], gradient)

            with cgutils.for_range(builder, builder.sdiv(length_i, n)) as loop:
                products(builder.mul(loop.index, n))
            with builder.if_then(builder.icmp_signed("!=", tail, ir.Constant(tail.type, 0))):
                products(last, uncovered)
            for i in range(count_t):
                for j in range(count_o):
                    cell = code.at(sums_a.data, builder.add(
                        builder.mul(builder.add(t0_i, ir.Constant(t0_i.type, i)), tap_stride),
                        builder.mul(builder.add(o0_i, ir.Constant(o0_i.type, j)),
                                    output_stride)))
                    code.store(builder.fadd(code.load(cell), builder.load(acc[i][j])), cell)

        keys = [t * (SUM_ROWS + 1) + o for t in range(1, SUM_TAPS + 1)
                for o in range(1, SUM_ROWS + 1)]
        code.cases(builder.add(builder.mul(taps_i, ir.Constant(taps_i.type, SUM_ROWS + 1)),
                               outs_i), keys, tile_of)
    return types.none(sums, t0, taps, o0, outs, dy, src, offsets, length), _outlined(
        "sums_tile", codegen)


@njit(cache=True, nogil=True)
def direct_sums(sums, dy, src, offsets, length):
    """sums[t, o, :] += the products dy[o, p] * src[offsets[t] + p] over p < length, each lane
    taking some of the positions: for all taps t < sums.shape[0] and outputs o < sums.shape[1]
    (dy's rows). sums has room for the lanes of float32, the most (a workspace planned before
    its dtype is known): float64 uses half. Reads reach src[offsets[t] + length - 1] at most.
    Lengths below a vector's width run as loops."""
    if length < VECTOR_BYTES // sums.itemsize:
        for t in range(sums.shape[0]):
            source = src[offsets[t]:offsets[t] + length]
            for o in range(sums.shape[1]):
                total = sums[t, o, 0]
                for p in range(length):
                    total += dy[o, p] * source[p]
                sums[t, o, 0] = total
        return
    for t0 in range(0, sums.shape[0], SUM_TAPS):
        taps = min(SUM_TAPS, sums.shape[0] - t0)
        for o0 in range(0, sums.shape[1], SUM_ROWS):
            _sums_tile(sums, t0, taps, o0, min(SUM_ROWS, sums.shape[1] - o0), dy, src,
                       offsets, length)


@njit(cache=True, nogil=True)
def fold_lanes(sums, out):
    """out[t, o] += the sum of sums[t, o, :]'s lanes."""
    for t in range(sums.shape[0]):
        for o in range(sums.shape[1]):
            total = sums[t, o, 0]
            for lane in range(1, sums.shape[2]):
                total += sums[t, o, lane]
            out[t, o] += total
