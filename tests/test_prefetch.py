"""``sim.kernels.prefetch``: a hint that compiles to ``prefetcht0`` and changes nothing.

A prefetch must leave every value alone (the kernels' results are bit-identical with and without
it) and must compile for the arrays the kernels prefetch from (1-D and 2-D, C order, any integer
index). Compiled, the instruction must be in the machine code (else the hint silently vanished);
under ``NUMBA_DISABLE_JIT=1`` the calls are plain Python no-ops.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from sim.kernels.prefetch import prefetch, prefetch_at


def _walk(rows: np.ndarray, flat: np.ndarray, idx: np.ndarray) -> float:
    total = 0.0
    for k in range(idx.shape[0]):
        if k + 1 < idx.shape[0]:
            prefetch(flat, idx[k + 1])
            prefetch(rows, idx[k + 1])
            prefetch_at(rows, idx[k + 1], rows.shape[1] - 1)
        total += rows[idx[k], 0] + rows[idx[k], rows.shape[1] - 1] + flat[idx[k]]
    return total


def test_prefetch_changes_no_value() -> None:
    rng = np.random.default_rng(5)
    rows = rng.random((1_000, 6))
    flat = rng.random(1_000)
    idx = rng.integers(0, 1_000, 5_000)
    before = (rows.copy(), flat.copy())
    want = 0.0
    for k in idx:
        want += rows[k, 0] + rows[k, 5] + flat[k]
    got = numba.njit(_walk)(rows, flat, idx)
    assert got == want
    np.testing.assert_array_equal(rows, before[0])
    np.testing.assert_array_equal(flat, before[1])
    assert _walk(rows, flat, idx) == want  # as plain Python: the calls do nothing


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no machine code without the JIT")
def test_prefetch_is_an_instruction() -> None:
    walk = numba.njit(_walk)
    rows = np.zeros((4, 3))
    walk(rows, np.zeros(4), np.arange(4, dtype=np.int32))
    asm = walk.inspect_asm(walk.signatures[0])
    assert asm.count("prefetcht0") >= 3
