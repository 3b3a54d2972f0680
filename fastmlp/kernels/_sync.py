"""Threads for the compiled training loop: a spin barrier in jitted code, and the Python call
that runs one jitted worker function on T threads.

Why not Numba's ``prange`` or a threaded BLAS: a training step at batch 32 takes ~100 us, and
both of those fork and join several times per step, with workers that busy-wait in between. On
two cores that spinning costs more than the second core brings, and as soon as anything else runs
on the machine (a browser, a second training run) the spinners take the cores from the threads
doing the work: 2-thread runs fell to 20-40k samples/s while 1-thread runs kept 90-170k.

Instead, ``run_workers`` starts T threads once per chunk of steps (thousands of steps), each
running the same jitted function with its own thread index; inside it they meet at a barrier a
couple of times per step (see loop/steps.py). The barrier spins with the CPU's spin-wait hint (x86 ``pause``, AArch64 ``yield``) for a
few microseconds, then yields the core to the operating system between checks, so a waiting
thread never takes the core from the one it waits for.

    state (2,) int64   barrier state: [0] threads arrived, [1] the current sense (0 or 1)
"""

import threading
import time

import llvmlite.binding as llvm_binding
import llvmlite.ir as ir
import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import jit

__all__ = [  # what the package namespace fastmlp.kernels gives (kernels/__init__.py)
    "SPINS", "_barrier", "new_state", "run_workers",
]


def _item_pointer(context, builder, aryty, ary, index):
    return cgutils.get_item_pointer(context, builder, aryty,
                                    context.make_array(aryty)(context, builder, ary), [index])


@intrinsic
def _atomic_add(typingctx, arr, index, value):
    # the old arr[index] of an int64 array, after adding value to it atomically (seq_cst)
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.int64(arr, index, value)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        v = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, v, "seq_cst")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, arr, index):
    # arr[index] of an int64 array, read with acquire ordering (never hoisted out of a loop)
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.int64(arr, index)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def _atomic_store(typingctx, arr, index, value):
    # arr[index] = value for an int64 array, with release ordering
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.void(arr, index, value)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        v = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(v, ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


def _call_void_function(builder, name, restype):
    # call the external function `name` taking no arguments
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(restype, []), name)
    return builder.call(fn, [])


def spin_hint(triple):
    """The spin-wait hint for the target ``triple``: ``(LLVM intrinsic, its i32 argument or
    None)``, or None where there is none. x86's ``pause``, AArch64's ``yield`` (hint #1); an
    x86 intrinsic on another CPU would make LLVM abort the compile (it did on aarch64)."""
    arch = triple.split("-")[0]
    if arch in ("x86_64", "i386", "i486", "i586", "i686"):
        return "llvm.x86.sse2.pause", None
    if arch in ("aarch64", "arm64"):
        return "llvm.aarch64.hint", 1
    return None


_SPIN_HINT = spin_hint(llvm_binding.get_process_triple())


@intrinsic
def _pause(typingctx):
    # the CPU's spin-wait hint (spin_hint), nothing where it has none
    def codegen(context, builder, signature, args):
        if _SPIN_HINT is not None:
            name, arg = _SPIN_HINT
            if arg is None:
                _call_void_function(builder, name, ir.VoidType())
            else:
                i32 = ir.IntType(32)
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), [i32]), name)
                builder.call(fn, [ir.Constant(i32, arg)])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _sched_yield(typingctx):
    # give the core to another runnable thread (libc's sched_yield)
    def codegen(context, builder, signature, args):
        return _call_void_function(builder, "sched_yield", ir.IntType(32))

    return types.int32(), codegen


# With the JIT off (NUMBA_DISABLE_JIT=1) the intrinsics above cannot run, and the barrier runs
# in Python with these instead: the GIL orders plain reads and writes, a lock makes the add atomic.
_ADD_LOCK = threading.Lock()


def _py_atomic_add(arr, index, value):
    with _ADD_LOCK:
        old = int(arr[index])
        arr[index] = old + value
    return old


def _py_atomic_load(arr, index):
    return int(arr[index])


def _py_atomic_store(arr, index, value):
    arr[index] = value


def _py_pause():
    pass


def _py_sched_yield():
    time.sleep(0)  # lets another Python thread run
    return 0


if numba.config.DISABLE_JIT:
    _atomic_add, _atomic_load, _atomic_store, _pause, _sched_yield = (
        _py_atomic_add, _py_atomic_load, _py_atomic_store, _py_pause, _py_sched_yield)


SPINS = 2000  # pause hints (~30-60 ns each) before a waiting thread starts yielding the core


@jit
def _barrier(state, T, sense):
    # Wait until all T threads have called this with the same `sense`; returns the next sense.
    # A sense-reversing barrier: the last thread to arrive resets the count and flips state[1].
    if T <= 1:
        return sense
    new = 1 - sense
    if _atomic_add(state, 0, 1) == T - 1:
        _atomic_store(state, 0, 0)
        _atomic_store(state, 1, new)
    else:
        spins = 0
        while _atomic_load(state, 1) != new:
            if spins < SPINS:
                _pause()
                spins += 1
            else:
                _sched_yield()
    return new


def new_state():
    """A fresh barrier state for one call of :func:`run_workers`."""
    return np.zeros(2, dtype=np.int64)


def run_workers(fn, threads, *args):
    """Run ``fn(t, threads, *args)`` on ``threads`` threads (t = 0 in this one) and return what
    thread 0 returns. ``fn`` is a jitted function compiled with ``nogil=True``: the threads run
    it at the same time."""
    if threads <= 1:
        return fn(0, 1, *args)
    others = [threading.Thread(target=fn, args=(t, threads, *args), daemon=True)
              for t in range(1, threads)]
    for th in others:
        th.start()
    try:
        return fn(0, threads, *args)
    finally:
        for th in others:
            th.join()
