"""A calendar queue: time-stamped records handed out in time order, for numba kernels.

The pipeline keeps two big schedules: the retries (time, first attempt, failed attempts) and the
connection releases (time, node). A binary or four-ary heap of millions of records pays a sift
through its whole depth, one cache miss per level, for every record it hands out. A calendar queue
instead appends each record to the bucket of ``bucket_s`` seconds its time falls in (a chain of
blocks of ``BLOCK`` rows: sequential writes) and sorts a bucket only when the clock reaches it; the
records of the current bucket are then read in order from one contiguous array.

Records are handed out in the order of (time, insertion): equal times leave in the order they were
pushed, whatever the bucket width. The structure:

- ``ring``: one slot per bucket for the ``slots`` buckets after the current one (head block, tail
  block and fill of the tail block; head ``-1`` when empty);
- ``pool``/``link``/``free``: the blocks, their chain links and a stack of free blocks;
- ``cur``: the current bucket, sorted; ``cur[ist[I_CI]:ist[I_CN]]`` is still to come. The next
  bucket is loaded once the caller's clock reaches it (``stale`` and ``load`` take that time);
- ``late``: a heap of records pushed at or before the current bucket (a retry due in the same
  bucket, say);
- ``far``: a heap of records beyond the ring (a session that outlasts the ring's span), merged
  into their bucket when it is loaded.

Times must be numbers (``inf`` is allowed, ``nan`` is not). The bucket width is a power of two, so
that a time's bucket ``floor(x / bucket_s)`` and a bucket's start ``bucket * bucket_s`` are exact
and agree (with 0.1 s, ``16383.9`` lies in bucket 163839 but before ``163839 * 0.1``).

Every array is caller-owned and lives in a ``Calendar`` named tuple; functions that may grow an
array return the (new) tuple. Columns: 0 the time, 1 .. ``width - 1`` the payload, then a sequence
number the queue adds itself (the rows, their heaps and sort: ``sim.kernels.rows``).

Two ways to use it. From Python or now and then: ``c = push(c, x, a, b)``, ``c, t = first(c)``,
``take(c, out)``. In a kernel's per-record loop, on the arrays themselves (a named tuple passed to a
call costs a reference count per field): ``room``, then ``put`` (``reserve`` when there is no
room); ``stale(ist, t, bucket_s)``, then ``peek`` and ``take_from`` (``load(c, t)`` when stale).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
from numba import njit

from sim.kernels import hot
from sim.kernels import rows as rw

BLOCK = 256  # rows per block of a bucket's chain

I_BUCKET = 0  # the bucket loaded into ``cur``: every record of it or before is in cur or late
I_CI = 1  # next record of ``cur``
I_CN = 2  # records in ``cur``
I_LN = 3  # records in ``late``
I_FN = 4  # records in ``far``
I_FREE = 5  # free blocks on the stack
I_USED = 6  # blocks ever handed out of the pool
I_SIZE = 7  # records queued
I_SEQ = 8  # the next sequence number
I_NEXT = 9  # no record of the ring or ``far`` lies in a bucket before this one
N_IST = 10

Calendar = namedtuple("Calendar", "bucket_s pool link ring free cur late far scratch ist")


def new(width: int, bucket_s: float, slots: int = 1024, blocks: int = 4) -> Any:
    """An empty calendar of records of ``width`` columns (time first, at most 3) at time 0."""
    if not 1 <= width <= 3:
        raise ValueError(f"width must be 1, 2 or 3 columns, got {width}")
    if not bucket_s > 0 or not np.isfinite(bucket_s) or np.frexp(bucket_s)[0] != 0.5:
        raise ValueError(
            f"bucket_s must be a power of two of seconds (0.25, 1, 4, ...), got {bucket_s}"
        )
    if slots < 1 or blocks < 1:
        raise ValueError(f"slots and blocks must be >= 1, got {slots}, {blocks}")
    cols = width + 1
    ring = np.zeros((slots, 3), dtype=np.int64)
    ring[:, 0] = -1
    ist = np.zeros(N_IST, dtype=np.int64)
    ist[I_BUCKET] = -1  # nothing loaded: bucket 0 (times from 0) is the first in the ring
    return Calendar(
        float(bucket_s),
        np.zeros((blocks * BLOCK, cols)),
        np.full(blocks, -1, dtype=np.int64),
        ring,
        np.zeros(blocks, dtype=np.int64),
        np.zeros((BLOCK, cols)),
        np.zeros((16, cols)),
        np.zeros((16, cols)),
        np.zeros((BLOCK, cols)),
        ist,
    )


@hot
def _bucket_of(x: float, bucket_s: float) -> int:
    """The bucket of time ``x``; times beyond 2**62 buckets (``inf`` too) share the last one."""
    q = np.floor(x / bucket_s)
    return int(q) if q < 2.0**62 else 1 << 62


# ---------------------------------------------------------------------------------------------
# the queue


@hot
def room(late: np.ndarray, far: np.ndarray, link: np.ndarray, ist: np.ndarray) -> bool:
    """One more record fits wherever it goes (else ``reserve`` first)."""
    return bool(
        ist[I_LN] < late.shape[0]
        and ist[I_FN] < far.shape[0]
        and (ist[I_FREE] > 0 or ist[I_USED] < link.shape[0])
    )


@njit(cache=True)
def reserve(c: Any) -> Any:
    """The calendar with room for one more record anywhere (arrays grown as needed)."""
    ist = c.ist
    late = c.late
    if ist[I_LN] == late.shape[0]:
        late = rw.grow_rows(late, late.shape[0] + 1, False)
    far = c.far
    if ist[I_FN] == far.shape[0]:
        far = rw.grow_rows(far, far.shape[0] + 1, False)
    pool, link, free = c.pool, c.link, c.free
    used = ist[I_USED]
    if ist[I_FREE] == 0 and used == link.shape[0]:
        blocks = 2 * used
        pool = np.zeros((blocks * BLOCK, c.pool.shape[1]))
        rw.copy_rows(c.pool, 0, pool, 0, c.pool.shape[0])
        link = np.full(blocks, -1, dtype=np.int64)
        for i in range(used):
            link[i] = c.link[i]
        free = np.zeros(blocks, dtype=np.int64)
    return Calendar(c.bucket_s, pool, link, c.ring, free, c.cur, late, far, c.scratch, ist)


@hot
def put(
    bucket_s: float,
    pool: np.ndarray,
    link: np.ndarray,
    ring: np.ndarray,
    free: np.ndarray,
    late: np.ndarray,
    far: np.ndarray,
    ist: np.ndarray,
    x: float,
    a: float,
    b: float,
) -> None:
    """Queue the record ``(x, a, b)`` (columns beyond the width ignored); needs ``room``.

    The arrays are the calendar's fields of those names: kernels that push in a loop unpack the
    calendar once (a named tuple passed to every call costs a reference count per field).
    """
    seq = float(ist[I_SEQ])
    ist[I_SEQ] += 1
    ist[I_SIZE] += 1
    q = x / bucket_s
    current = ist[I_BUCKET]
    slots = ring.shape[0]
    if q < current + 1:  # at or before the current bucket
        rw.heap_push(late, ist[I_LN], x, a, b, seq)
        ist[I_LN] += 1
        return
    if q >= current + 1 + slots:  # beyond the ring
        rw.heap_push(far, ist[I_FN], x, a, b, seq)
        ist[I_FN] += 1
        later = _bucket_of(x, bucket_s)
        if later < ist[I_NEXT]:
            ist[I_NEXT] = later
        return
    bucket = int(q)
    if bucket < ist[I_NEXT]:
        ist[I_NEXT] = bucket
    slot = bucket % slots
    if ring[slot, 0] < 0 or ring[slot, 2] == BLOCK:
        if ist[I_FREE] > 0:
            ist[I_FREE] -= 1
            blk = free[ist[I_FREE]]
        else:
            blk = ist[I_USED]
            ist[I_USED] += 1
        if ring[slot, 0] < 0:
            ring[slot, 0] = blk
        else:
            link[ring[slot, 1]] = blk
        ring[slot, 1] = blk
        ring[slot, 2] = 0
    rw.write(pool, ring[slot, 1] * BLOCK + ring[slot, 2], x, a, b, seq)
    ring[slot, 2] += 1


@njit(cache=True)
def push(c: Any, x: float, a: float, b: float) -> Any:
    """Queue the record ``(x, a, b)``; return the calendar (grown if it had to be)."""
    if not room(c.late, c.far, c.link, c.ist):
        c = reserve(c)
    put(c.bucket_s, c.pool, c.link, c.ring, c.free, c.late, c.far, c.ist, x, a, b)
    return c


@hot
def stale(ist: np.ndarray, t: float, bucket_s: float) -> bool:
    """No record is loaded, but one may be due by ``t``: ``load(c, t)`` before ``peek``."""
    return bool(
        ist[I_CI] == ist[I_CN]
        and ist[I_LN] == 0
        and ist[I_SIZE] > 0
        and t >= ist[I_NEXT] * bucket_s
    )


@hot
def peek(cur: np.ndarray, late: np.ndarray, ist: np.ndarray) -> float:
    """The earliest time among the loaded records (``inf`` when there is none)."""
    t = np.inf
    if ist[I_CI] < ist[I_CN]:
        t = cur[ist[I_CI], 0]
    if ist[I_LN] > 0 and late[0, 0] < t:
        t = late[0, 0]
    return t


@njit(cache=True)
def first(c: Any) -> tuple[Any, float]:
    """``(c, time)``: the earliest queued time (``inf`` when empty), loading a bucket if needed."""
    if stale(c.ist, np.inf, c.bucket_s):
        c = load(c, np.inf)
    return c, peek(c.cur, c.late, c.ist)


@hot
def take_from(cur: np.ndarray, late: np.ndarray, ist: np.ndarray, out: np.ndarray) -> None:
    """Move the earliest loaded record into ``out`` (time, payload...)."""
    ci = ist[I_CI]
    m = cur.shape[1]
    if ci < ist[I_CN] and (ist[I_LN] == 0 or rw.less(cur, ci, late, 0)):
        for j in range(m - 1):
            out[j] = cur[ci, j]
        ist[I_CI] = ci + 1
    else:
        for j in range(m - 1):
            out[j] = late[0, j]
        ist[I_LN] = rw.heap_pop(late, ist[I_LN])
    ist[I_SIZE] -= 1


@njit(cache=True)
def take(c: Any, out: np.ndarray) -> None:
    """Move the earliest record into ``out`` (time, payload...); call ``first`` before."""
    if c.ist[I_CI] == c.ist[I_CN] and c.ist[I_LN] == 0:
        raise ValueError("take: no record is loaded (the calendar is empty, or call first)")
    take_from(c.cur, c.late, c.ist, out)


@njit(cache=True)
def load(c: Any, t: float) -> Any:
    """Make the next bucket that holds records the current one, if it starts by ``t``.

    Its records are gathered and sorted by (time, insertion). A bucket that starts after ``t`` is
    left alone (nothing in it is due by ``t``; loading it early would send every record pushed
    meanwhile into the buckets before it to ``late``), and ``peek`` says ``inf`` until then.
    """
    ist = c.ist
    if ist[I_CI] < ist[I_CN] or ist[I_LN] > 0:
        return c  # loaded records are still to come: nothing to load yet
    ring = c.ring
    slots = ring.shape[0]
    now = ist[I_BUCKET]
    target = -1
    for d in range(1, slots + 1):
        if ring[(now + d) % slots, 0] >= 0:
            target = now + d
            break
    if ist[I_FN] > 0:
        qf = _bucket_of(c.far[0, 0], c.bucket_s)
        if target < 0 or qf < target:
            target = qf
    if target * c.bucket_s > t:
        # nothing is due by t; the ring moves on to the clock's bucket (all empty up to there)
        ist[I_NEXT] = target
        clock = _bucket_of(t, c.bucket_s)
        if now < clock < target:
            ist[I_BUCKET] = clock
        return c
    ist[I_NEXT] = target + 1
    # the ring's records of the target bucket, then the far ones that belong to it
    n = 0
    cur = c.cur
    m = cur.shape[1]
    slot = target % slots
    if target <= now + slots and ring[slot, 0] >= 0:
        blk = ring[slot, 0]
        while blk >= 0:
            rows = ring[slot, 2] if blk == ring[slot, 1] else BLOCK
            if n + rows > cur.shape[0]:
                cur = rw.grow_rows(cur, n + rows, False)
            base = blk * BLOCK
            rw.copy_rows(c.pool, base, cur, n, rows)
            n += rows
            c.free[ist[I_FREE]] = blk
            ist[I_FREE] += 1
            nxt = c.link[blk]
            c.link[blk] = -1
            blk = nxt
        ring[slot, 0] = -1
        ring[slot, 1] = -1
        ring[slot, 2] = 0
    far = c.far
    while ist[I_FN] > 0 and _bucket_of(far[0, 0], c.bucket_s) <= target:
        if n == cur.shape[0]:
            cur = rw.grow_rows(cur, n + 1, False)
        rw.copy_rows(far, 0, cur, n, 1)
        n += 1
        ist[I_FN] = rw.heap_pop(far, ist[I_FN])
    scratch = c.scratch
    if scratch.shape[0] < n:
        scratch = np.zeros((cur.shape[0], m))
    rw.sort_bucket(cur, n, scratch, target * c.bucket_s, c.bucket_s)
    ist[I_BUCKET] = target
    ist[I_CI] = 0
    ist[I_CN] = n
    # the sorted records are in ``scratch``, which becomes ``cur``; the old ``cur`` the scratch
    return Calendar(c.bucket_s, c.pool, c.link, ring, c.free, scratch, c.late, far, cur, ist)


@njit(cache=True)
def times(c: Any) -> np.ndarray:
    """Every queued time (unsorted)."""
    ist = c.ist
    out = np.empty(ist[I_SIZE])
    n = 0
    for i in range(ist[I_CI], ist[I_CN]):
        out[n] = c.cur[i, 0]
        n += 1
    for i in range(ist[I_LN]):
        out[n] = c.late[i, 0]
        n += 1
    for i in range(ist[I_FN]):
        out[n] = c.far[i, 0]
        n += 1
    ring = c.ring
    for slot in range(ring.shape[0]):
        blk = ring[slot, 0]
        while blk >= 0:
            rows = ring[slot, 2] if blk == ring[slot, 1] else BLOCK
            for r in range(blk * BLOCK, blk * BLOCK + rows):
                out[n] = c.pool[r, 0]
                n += 1
            blk = c.link[blk]
    return out[:n]


def next_due(c: Any) -> float:
    """A lower bound of the earliest queued time, from Python without a kernel call (exact when
    a record is loaded; ``inf`` when the calendar is empty): a caller whose clock is before it
    can skip the calendar."""
    ist = c.ist
    if ist[I_SIZE] == 0:
        return np.inf
    t = np.inf
    if ist[I_CI] < ist[I_CN]:
        t = float(c.cur[ist[I_CI], 0])
    if ist[I_LN] > 0:
        t = min(t, float(c.late[0, 0]))
    if t == np.inf:  # nothing loaded: nothing lies before the bucket I_NEXT
        t = float(ist[I_NEXT] * c.bucket_s)
    return t


def size(c: Any) -> int:
    """Records queued."""
    return int(c.ist[I_SIZE])
