"""A node crash: every listener on it is dropped at once and reconnects a little later.

At a tick boundary ``T`` the health model (``sim.model.health``) may crash a node. ``drop`` then:

1. finds the node's connections in the release calendar (records ``(release time, node and
   epoch, join record)``, walked in place, nothing removed): each one that belongs to a joined
   listener still connected at ``T`` (joined by ``T``, leaving after it) or to a join still in
   flight (joining after ``T``) is dropped at ``T``: its departure, and for a join in flight its
   join too, move to ``T`` in the join records and in the bins of joins and departures (a join in
   flight on a crashed node counts as joined and dropped at the crash);
2. schedules a reconnect for each dropped listener, in the order of their join records, at
   ``T + reconnect_min_s + Exp(reconnect_mean_s)`` (stream ``reconnect``): a new first attempt
   through the retry calendar (stage ``STAGE_RECONNECT``); when the room ended (an operator
   action), only a share of them come back, and only once the room is relaunched (the delay
   counts from then);
3. takes the node's joins in flight out of the in-flight heap (admission's ``in_flight``);
4. starts a new epoch for the node: its queued release records become stale (the pipeline drops
   them when they come due, ``epoch[-1]`` counts them), its connection count, waiting room and
   workers are reset, the workers busy until the restart.

Attempts that timed out on the node keep the retries they already have.

``drop_listeners`` drops only some connected listeners of nodes that stay up (an audio stall, a
saturated presence channel): ``quota[node]`` of the joined listeners connected at ``T``, the first
ones in the order of their join records (sessions are exponential and memoryless, so which ones
go does not bias what is left). Each is dropped and reconnects as in a crash (steps 1 and 2); joins
in flight and attempts that timed out stay. The node keeps its epoch, workers and waiting room;
each dropped listener's release record is marked stale where it lies in the calendar (its epoch
becomes ``pipeline.STALE_EPOCH``, never a current one) and counted in ``epoch[-1]``, so that the
pipeline drops it when it comes due, as it does a crashed node's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from sim.kernels import calendar, pipeline, retry
from sim.kernels import rng as rn


@njit(cache=True)
def _keep(pos: np.ndarray, epoch: np.ndarray, code: float, row: float) -> int:
    """The crash-order position of the node of a release record if it crashes now, else -1."""
    c = int(code)
    node = c % pipeline.EPOCH_SPAN
    if pos[node] < 0 or c // pipeline.EPOCH_SPAN != epoch[node]:
        return -1
    return int(pos[node])


# where ``_scan`` found a record: the part of the release calendar (``out[:, 2]``), and its row
# of that array (``out[:, 3]``)
CUR = 0
LATE = 1
FAR = 2
POOL = 3


@njit(cache=True)
def _scan(
    a: np.ndarray,
    lo: int,
    hi: int,
    pos: np.ndarray,
    epoch: np.ndarray,
    out: np.ndarray,
    when: np.ndarray,
    n: int,
    part: int,
) -> int:
    """Append the records ``a[lo:hi]`` of crashing nodes to ``out``/``when`` (``(crash
    position, join row)``, and with 4 columns ``(part, index)``, ``a`` being the calendar's
    ``part``); return the count."""
    where = out.shape[1] == 4
    for i in range(lo, hi):
        p = _keep(pos, epoch, a[i, 1], a[i, 2])
        if p >= 0:
            out[n, 0] = p
            out[n, 1] = int(a[i, 2])
            if where:
                out[n, 2] = part
                out[n, 3] = i
            when[n] = a[i, 0]
            n += 1
    return n


@njit(cache=True)
def _rows_of(
    rel: Any, pos: np.ndarray, epoch: np.ndarray, where: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(crash position, join row)`` of the release records of the crashing nodes (``pos[node]
    >= 0``, current epoch; row -1 for an attempt that timed out), and with ``where`` the place
    of each record (``CUR``, ``LATE``, ``FAR`` or ``POOL``, and its row there), sorted by
    position and join row, and their release times: one walk of the calendar for all of them."""
    cols = 4 if where else 2  # writing the place slowed a walk of every record ~30 %: on demand
    out = np.empty((max(16, rel.ist[calendar.I_SIZE]), cols), dtype=np.int64)
    when = np.empty(out.shape[0])  # the record's release time
    ist = rel.ist
    n = _scan(rel.cur, ist[calendar.I_CI], ist[calendar.I_CN], pos, epoch, out, when, 0, CUR)
    n = _scan(rel.late, 0, ist[calendar.I_LN], pos, epoch, out, when, n, LATE)
    n = _scan(rel.far, 0, ist[calendar.I_FN], pos, epoch, out, when, n, FAR)
    ring = rel.ring
    for slot in range(ring.shape[0]):
        blk = ring[slot, 0]
        while blk >= 0:
            rows = ring[slot, 2] if blk == ring[slot, 1] else calendar.BLOCK
            lo = blk * calendar.BLOCK
            n = _scan(rel.pool, lo, lo + rows, pos, epoch, out, when, n, POOL)
            blk = rel.link[blk]
    keys = out[:n, 0] * (1 << 40) + out[:n, 1]  # rows < 2**40 (a timeout's row, -1, sorts first)
    order = np.argsort(keys)
    res = np.empty((n, cols), dtype=np.int64)
    times = np.empty(n)
    for k in range(n):
        for c in range(cols):
            res[k, c] = out[order[k], c]
        times[k] = when[order[k]]
    return res, times


@njit(cache=True)
def _mark_stale(rel: Any, part: int, i: int) -> None:
    """Give the release record ``i`` of the calendar's ``part`` an epoch that is never current."""
    a = rel.pool
    if part == CUR:
        a = rel.cur
    elif part == LATE:
        a = rel.late
    elif part == FAR:
        a = rel.far
    node = int(a[i, 1]) % pipeline.EPOCH_SPAN
    a[i, 1] = float(node + pipeline.STALE_EPOCH * pipeline.EPOCH_SPAN)


@njit(cache=True)
def held_release_times(rel: Any, epoch: np.ndarray) -> np.ndarray:
    """The release times of the connections held (stale records, of crashed epochs or of
    dropped listeners, left out)."""
    pos = np.arange(epoch.shape[0] - 1)
    return _rows_of(rel, pos, epoch)[1]


@njit(cache=True)
def _without(h: np.ndarray, n: int, values: np.ndarray) -> int:
    """Remove one entry equal to each of ``values`` from the heap ``h[:n]``; return its size."""
    vals = np.sort(values)
    keep = np.sort(h[:n])
    m = 0
    j = 0
    for i in range(n):
        x = keep[i]
        if j < vals.shape[0] and x == vals[j]:
            j += 1
            continue
        h[m] = x  # a sorted array is a heap
        m += 1
    return m


@njit(cache=True)
def _drop_one(
    r: int,
    t: float,
    back_from: float,
    share: float,
    ret: Any,
    slots: np.ndarray,
    slot_free: np.ndarray,
    istate: np.ndarray,
    jr: np.ndarray,
    bins: np.ndarray,
    bin_s: float,
    cp: np.ndarray,
    st: np.ndarray,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The listener of join record ``r`` leaves at ``t`` (in ``jr`` and ``bins``) and, with
    probability ``share``, reconnects at ``back_from + reconnect_min_s + Exp(reconnect_mean_s)``
    through the retry calendar; return ``(ret, slots, slot_free)``."""
    bins[int(jr[r, 1] // bin_s), 1] -= 1
    bins[int(t // bin_s), 1] += 1
    jr[r, 1] = t
    if share < 1.0 and rn.uniform(st, pipeline.R_RECONNECT) >= share:
        return ret, slots, slot_free
    back = back_from + cp[retry.P_RECONNECT_MIN]
    back += rn.exponential(st, pipeline.R_RECONNECT, cp[retry.P_RECONNECT_MEAN])
    if istate[pipeline.S_SLOT_FREE] == 0 and istate[pipeline.S_SLOT_USED] == slots.shape[0]:
        slots, slot_free = pipeline.grow_slots(slots, slot_free)
    slot = pipeline.take_slot(slots, slot_free, istate)
    ret = calendar.push(ret, back, float(slot), pipeline.STAGE_RECONNECT)
    return ret, slots, slot_free


@njit(cache=True)
def drop(
    nodes: np.ndarray,
    t: float,
    restart_t: float,
    rel: Any,
    ret: Any,
    slots: np.ndarray,
    slot_free: np.ndarray,
    istate: np.ndarray,
    jr: np.ndarray,
    bins: np.ndarray,
    bin_s: float,
    cn: np.ndarray,
    wn: np.ndarray,
    free: np.ndarray,
    epoch: np.ndarray,
    cp: np.ndarray,
    st: np.ndarray,
    share: float = 1.0,
    not_before: float = 0.0,
    flight: np.ndarray = np.zeros(1),  # noqa: B008  # numba: a default array is a constant
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Crash ``nodes`` at ``t`` (a tick end), in that order; return ``(ret, slots, slot_free,
    dropped per node)``.

    A dropped listener reconnects with probability ``share`` (one uniform draw of the
    ``reconnect`` stream each when ``share < 1``); the others are gone. Nobody reconnects before
    ``not_before`` (an ended room: they come back to the relaunched one). Crashing several nodes
    in one call gives the same result as one call per node, in order, with one walk of the
    release calendar.
    """
    pos = np.full(cn.shape[0], -1, dtype=np.int64)
    for k in range(nodes.shape[0]):
        pos[nodes[k]] = k
    found, release = _rows_of(rel, pos, epoch)
    bt = int(t // bin_s)
    dropped = np.zeros(nodes.shape[0], dtype=np.int64)
    gone = np.empty(found.shape[0])  # end times of the joins in flight on the crashing nodes
    n_gone = 0
    for q in range(found.shape[0]):
        r = found[q, 1]
        if r < 0:  # timed out, or a bot: in flight until it gives up or is served (then gone)
            if release[q] > t:
                gone[n_gone] = release[q]
                n_gone += 1
            continue
        join = jr[r, 0]
        leave = jr[r, 1]
        if leave <= t:
            continue  # left before the crash (its release was not handed back yet)
        if join > t:  # in flight: counts as joined at the crash
            gone[n_gone] = join
            n_gone += 1
            bins[int(join // bin_s), 0] -= 1
            bins[bt, 0] += 1
            jr[r, 0] = t
        dropped[found[q, 0]] += 1
        ret, slots, slot_free = _drop_one(
            r, t, max(not_before, t), share, ret, slots, slot_free, istate, jr, bins, bin_s, cp, st
        )
    istate[pipeline.S_RETRY_N] = ret.ist[calendar.I_SIZE]
    if istate[pipeline.S_FLIGHT] > 0 and n_gone > 0:  # they are in flight no more
        istate[pipeline.S_FLIGHT] = _without(flight, int(istate[pipeline.S_FLIGHT]), gone[:n_gone])
    for k in range(nodes.shape[0]):
        node = nodes[k]
        epoch[epoch.shape[0] - 1] += cn[node]
        epoch[node] += 1
        cn[node] = 0
        wn[node] = 0
        for w in range(free.shape[1]):
            free[node, w] = restart_t
    return ret, slots, slot_free, dropped


@njit(cache=True)
def drop_listeners(
    quota: np.ndarray,
    t: float,
    rel: Any,
    ret: Any,
    slots: np.ndarray,
    slot_free: np.ndarray,
    istate: np.ndarray,
    jr: np.ndarray,
    bins: np.ndarray,
    bin_s: float,
    cn: np.ndarray,
    epoch: np.ndarray,
    cp: np.ndarray,
    st: np.ndarray,
    share: float = 1.0,
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Drop ``quota[node]`` connected listeners of each node at ``t`` (a tick end), the nodes
    staying up; return ``(ret, slots, slot_free, dropped per node)``.

    Only joined listeners connected at ``t`` (joined by ``t``, leaving after it) are dropped: the
    first ``quota[node]`` of them in the order of their join records, all of them when there are
    fewer. Each leaves at ``t``, its release record is marked stale in place (``epoch[-1]`` counts
    it, ``cn[node]`` forgets it) and it reconnects with probability ``share`` (one uniform draw of
    the ``reconnect`` stream each when ``share < 1``), in that order, as after a crash. One walk
    of the release calendar for all nodes.
    """
    if quota.shape[0] != cn.shape[0]:
        raise ValueError("drop_listeners: quota needs one entry per node of the fleet")
    dropped = np.zeros(cn.shape[0], dtype=np.int64)
    pos = np.full(cn.shape[0], -1, dtype=np.int64)
    for node in range(cn.shape[0]):
        if quota[node] > 0:
            pos[node] = node
    if np.all(pos < 0):
        return ret, slots, slot_free, dropped
    found = _rows_of(rel, pos, epoch, True)[0]
    stale = epoch.shape[0] - 1
    for q in range(found.shape[0]):
        node = found[q, 0]
        r = found[q, 1]
        if r < 0 or dropped[node] >= quota[node]:
            continue  # an attempt that timed out, or enough dropped on that node
        if not jr[r, 0] <= t < jr[r, 1]:
            continue  # a join in flight, or gone by ``t`` (its release not handed back yet)
        _mark_stale(rel, found[q, 2], found[q, 3])
        epoch[stale] += 1
        cn[node] -= 1
        dropped[node] += 1
        ret, slots, slot_free = _drop_one(
            r, t, t, share, ret, slots, slot_free, istate, jr, bins, bin_s, cp, st
        )
    istate[pipeline.S_RETRY_N] = ret.ist[calendar.I_SIZE]
    return ret, slots, slot_free, dropped
