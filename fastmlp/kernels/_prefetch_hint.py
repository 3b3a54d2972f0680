"""A software prefetch hint for compiled kernels: ``_prefetch(arr, i)`` asks the CPU to start
loading the cache line holding ``arr[i]`` and returns at once (a prefetch never faults).

Why: the sparse first layer reads each batch row's CSR entries (idx, val) from wherever that
image sits in the data set, and the epoch's random order makes every row a jump the hardware
prefetcher cannot guess. Asking for the next rows' lines while the current one is computed hides
most of that wait (measured on Zen 3, 2 threads: the same steps on the images stored in batch
order ran 13-23% faster than in random order, and 5-8% with the hint; see benchmarks/README.md).

With the JIT off the hint is a Python no-op.
"""

import llvmlite.ir as ir
import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._sync import _item_pointer

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "LINE", "_prefetch",
]

LINE = 64  # bytes per cache line on x86


@intrinsic
def _prefetch(typingctx, arr, index):
    # llvm.prefetch(address of arr[index], read, keep in all cache levels, data cache)
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        i32 = ir.IntType(32)
        byte_ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [byte_ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, index), codegen


def _py_prefetch(arr, index):
    pass


if numba.config.DISABLE_JIT:
    _prefetch = _py_prefetch  # noqa: F811
