"""`prefetch(values)`: start loading a flat array into the caches, from @njit code.

A kernel that walks many small planes (a 32x32 float32 plane is one 4 KiB page) gets little
from the hardware's prefetchers, which follow streams within a page and start over at each new
one: the loads of each plane stall while its arithmetic waits. Prefetching the next plane while
computing this one overlaps the two (depthwise_3x3.py). (Non-temporal stores, which skip the
read of the lines an output overwrites, were tried there too: streaming each plane out from L1
made the layer slower, not faster, with both cores writing.)
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

LINE = 64   # bytes of a cache line


@intrinsic
def _prefetch_line(typingctx, values, offset):
    """llvm.prefetch (read, keep in all cache levels) of the byte at `offset` of an array."""
    if not isinstance(values, types.Array) or not isinstance(offset, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        byte = ir.IntType(8).as_pointer()
        address = builder.gep(builder.bitcast(array.data, byte),
                              [context.cast(builder, args[1], signature.args[1], types.intp)])
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(   # (LLVM's opaque pointers: ".p0")
            builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(function, [address, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(values, offset), codegen


@njit(cache=True, inline="always")
def prefetch(values):
    """Prefetch every cache line of the flat, contiguous array `values`."""
    for offset in range(0, values.size * values.itemsize, LINE):
        _prefetch_line(values, offset)
