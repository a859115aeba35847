"""Software prefetch for numba kernels: ask the CPU for a cache line before it is needed.

The per-attempt loop of ``sim.kernels.pipeline`` reads rows of tables too big for the caches (the
slot row of a person whose retry comes due: a random row of up to ~10^5) and long loop bodies
keep the CPU from reaching the next attempt's loads on its own. ``prefetch(a, i)`` issues
``prefetcht0`` for the line that holds ``a[i]`` (a 1-D array) or ``a[i, 0]`` (the start of row
``i`` of a 2-D array) and ``prefetch_at(a, i, j)`` for ``a[i, j]``: a hint, never a fault (an
address outside the array is allowed and ignored by the CPU) and no change to any value.

In compiled code each call becomes one instruction (an ``llvm.prefetch`` intrinsic, inlined); in
plain Python (``NUMBA_DISABLE_JIT=1``) it does nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def prefetch(a: np.ndarray, i: int) -> None:
    """Prefetch the line of ``a[i]`` (``a[i, 0]`` for a 2-D array); nothing in plain Python."""


def prefetch_at(a: np.ndarray, i: int, j: int) -> None:
    """Prefetch the line of ``a[i, j]`` of a 2-D array; nothing in plain Python."""


def _emit(context: Any, builder: Any, aryty: Any, ary_value: Any, idx: list[Any]) -> None:
    ary = context.make_array(aryty)(context, builder, ary_value)
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx)  # no bounds check
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
    # read (0), high temporal locality (3: all cache levels), data cache (1)
    flags = [ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
    builder.call(fn, [builder.bitcast(ptr, i8p), *flags])


@intrinsic
def _prefetch_row(typingctx: Any, a: Any, i: Any) -> Any:
    if not (isinstance(a, types.Array) and a.ndim in (1, 2) and isinstance(i, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        idx = [context.cast(builder, args[1], signature.args[1], types.intp)]
        if aryty.ndim == 2:
            idx.append(context.get_constant(types.intp, 0))
        _emit(context, builder, aryty, args[0], idx)
        return context.get_dummy_value()

    return types.void(a, i), codegen


@intrinsic
def _prefetch_elem(typingctx: Any, a: Any, i: Any, j: Any) -> Any:
    if not (
        isinstance(a, types.Array)
        and a.ndim == 2
        and isinstance(i, types.Integer)
        and isinstance(j, types.Integer)
    ):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        idx = [
            context.cast(builder, args[1], signature.args[1], types.intp),
            context.cast(builder, args[2], signature.args[2], types.intp),
        ]
        _emit(context, builder, signature.args[0], args[0], idx)
        return context.get_dummy_value()

    return types.void(a, i, j), codegen


@overload(prefetch, inline="always")
def _prefetch_impl(a: Any, i: Any) -> Any:
    def impl(a: Any, i: Any) -> None:
        _prefetch_row(a, i)  # type: ignore[call-arg]  # numba passes the typing context

    return impl


@overload(prefetch_at, inline="always")
def _prefetch_at_impl(a: Any, i: Any, j: Any) -> Any:
    def impl(a: Any, i: Any, j: Any) -> None:
        _prefetch_elem(a, i, j)  # type: ignore[call-arg]  # numba passes the typing context

    return impl
