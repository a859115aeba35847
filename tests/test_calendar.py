"""The calendar queue (``sim.kernels.calendar``) against ``heapq`` over ``(time, seq)`` tuples.

The plain-Python twin of a calendar queue is a binary heap of ``(time, push order, payload)``:
records leave in time order, equal times in the order they were pushed. Random interleavings of
``push``/``first``/``take`` must agree with it record for record, whatever the bucket width, the
number of ring slots and the record width; hand-made cases pin ties, records pushed before the
current bucket, records far beyond the ring, block recycling and argument checking. The same
sizes run in a few seconds with the kernels compiled or under ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np
import pytest

from sim.kernels import calendar as cal

N_OPS = 1_500  # operations per random sequence
BURST = 300  # records in one bucket: more than a block (``cal.BLOCK``) of them
N_TIES = 700
INF = math.inf


class Twin:
    """``heapq`` over ``(time, seq, a, b)``: the obvious priority queue the calendar must match."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, float, float]] = []
        self.seq = 0

    def push(self, x: float, a: float, b: float) -> None:
        heapq.heappush(self.heap, (x, self.seq, a, b))
        self.seq += 1

    def first(self) -> float:
        return self.heap[0][0] if self.heap else INF

    def take(self) -> tuple[float, float, float]:
        x, _, a, b = heapq.heappop(self.heap)
        return x, a, b

    def times(self) -> list[float]:
        return sorted(r[0] for r in self.heap)

    def __len__(self) -> int:
        return len(self.heap)


def _take(c: Any, width: int) -> list[float]:
    out = np.full(width, np.nan)
    cal.take(c, out)
    return out.tolist()


def _drain(c: Any, width: int) -> tuple[Any, list[list[float]]]:
    """Take every record, in order; ``first`` before each ``take``, as the kernels do."""
    taken = []
    while True:
        c, t = cal.first(c)
        if t == INF:
            break
        rec = _take(c, width)
        assert rec[0] == t
        taken.append(rec)
    assert cal.size(c) == 0
    return c, taken


# --------------------------------------------------------------------------- random sequences


def _delay(
    rng: np.random.Generator, now: float, bucket_s: float, slots: int, recent: list[float]
) -> float:
    """A time to push at: now, a little later, far beyond the ring, an exact repeat, or earlier."""
    kind = rng.integers(6)
    if kind == 0:
        return now
    if kind == 1:  # within a few buckets: the current one (late) or the ring
        return now + rng.exponential(bucket_s)
    if kind == 2:  # often beyond the ring: far
        return now + rng.exponential(3.0 * slots * bucket_s)
    if kind == 3 and recent:  # an exact repeat of a time pushed before (maybe already due)
        return recent[int(rng.integers(len(recent)))]
    if kind == 4:  # rounded times collide with each other
        return round(now + rng.exponential(2.0 * bucket_s), 1)
    return max(0.0, now - rng.exponential(bucket_s))  # before the clock: late


def _check_random_sequence(width: int, bucket_s: float, slots: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = cal.new(width, bucket_s, slots=slots, blocks=1)
    twin = Twin()
    now = 0.0  # the time of the last record taken
    recent: list[float] = []
    pushed = taken = max_late = max_far = 0
    blocks0 = c.pool.shape[0]

    def push(x: float) -> None:
        nonlocal c, pushed
        a = float(pushed)
        b = float(rng.normal())
        c = cal.push(c, x, a, b)
        twin.push(x, a, b)
        pushed += 1
        recent.append(x)
        if len(recent) > 50:
            recent.pop(0)

    for step in range(N_OPS):
        u = rng.random()
        if step == N_OPS // 3 or u < 0.002:  # a burst into a bucket: a chain of blocks, ties
            if step == N_OPS // 3:  # the bucket after the current one: in the ring
                x0 = (int(c.ist[cal.I_BUCKET]) + 1.25) * bucket_s
            else:  # anywhere: the current bucket (late), the ring or beyond (far)
                x0 = now + rng.exponential(slots * bucket_s / 2)
            for _ in range(BURST):
                push(x0 if rng.random() < 0.3 else x0 + rng.random() * bucket_s * 0.5)
        elif u < 0.55:
            push(float(_delay(rng, now, bucket_s, slots, recent)))
        else:
            c, t = cal.first(c)
            assert t == twin.first()
            if t != INF and rng.random() < 0.8:
                got = _take(c, width)
                want = list(twin.take())[:width]
                assert got == want, (step, got, want)
                now = t
                taken += 1
        assert cal.size(c) == len(twin)
        max_late = max(max_late, int(c.ist[cal.I_LN]))
        max_far = max(max_far, int(c.ist[cal.I_FN]))
        if step % 199 == 0:
            assert sorted(cal.times(c).tolist()) == twin.times()

    assert sorted(cal.times(c).tolist()) == twin.times()
    # drain what is left, still in the twin's order
    c, rest = _drain(c, width)
    assert rest == [list(twin.take())[:width] for _ in range(len(twin))]
    assert cal.times(c).shape == (0,)
    # the sequence did what it is meant to exercise
    assert taken > N_OPS // 5
    assert c.pool.shape[0] > blocks0  # the pool had to grow from one block (the ring burst)
    assert max_late > 0
    assert max_far > 0


@pytest.mark.parametrize("slots", [1, 2, 8, 64])
@pytest.mark.parametrize("bucket_s", [0.125, 0.5, 1.0, 4.0])
def test_random_sequences_match_heapq(bucket_s: float, slots: int) -> None:
    for width in (1, 2, 3):
        seed = 1000 * width + 10 * slots + int(10 * bucket_s)
        _check_random_sequence(width, bucket_s, slots, seed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences_match_heapq_more_seeds(seed: int) -> None:
    _check_random_sequence(3, 0.25, 4, seed)


# --------------------------------------------------------------------------- ties


def test_equal_times_leave_in_push_order_before_and_after_the_bucket_is_loaded() -> None:
    c = cal.new(3, 1.0, slots=8)
    a = 0
    for _ in range(10):  # into the ring
        c = cal.push(c, 2.5, float(a), -float(a))
        a += 1
    c, t = cal.first(c)  # loads bucket 2
    assert t == 2.5
    assert c.ist[cal.I_BUCKET] == 2
    for _ in range(10):  # same bucket, now current: the late heap
        c = cal.push(c, 2.5, float(a), -float(a))
        a += 1
    order = []
    for _ in range(5):
        c, t = cal.first(c)
        assert t == 2.5
        order.append(_take(c, 3))
    for _ in range(10):  # more while the bucket is half read
        c = cal.push(c, 2.5, float(a), -float(a))
        a += 1
    c, rest = _drain(c, 3)
    order += rest
    assert order == [[2.5, float(i), -float(i)] for i in range(a)]


def test_many_equal_times_over_several_blocks_leave_in_push_order() -> None:
    c = cal.new(2, 0.5, slots=4, blocks=1)
    rng = np.random.default_rng(5)
    expected = []
    # a bucket of more than two blocks: equal times interleaved with other times of the bucket
    for i in range(N_TIES):
        x = 1.25 if rng.random() < 0.7 else float(1.0 + 0.49 * rng.random())
        c = cal.push(c, x, float(i), 0.0)
        expected.append((x, i))
    assert c.pool.shape[0] >= 2 * cal.BLOCK
    c, taken = _drain(c, 2)
    assert taken == [[x, float(i)] for x, i in sorted(expected)]


def test_ties_between_far_ring_and_late_records_keep_push_order() -> None:
    c = cal.new(2, 1.0, slots=4)
    c = cal.push(c, 5.5, 0.0, 0.0)  # bucket 5, beyond the ring (buckets 0..3): far
    c = cal.push(c, 0.5, 1.0, 0.0)
    c, t = cal.first(c)
    assert t == 0.5
    assert _take(c, 2) == [0.5, 1.0]
    c = cal.push(c, 3.2, 2.0, 0.0)
    c, t = cal.first(c)  # loads bucket 3: the ring now holds buckets 4..7
    assert t == 3.2
    assert _take(c, 2) == [3.2, 2.0]
    c = cal.push(c, 5.5, 3.0, 0.0)  # bucket 5 again, in the ring this time
    c = cal.push(c, 5.2, 4.0, 0.0)
    c = cal.push(c, 5.5, 5.0, 0.0)
    c, t = cal.first(c)  # loads bucket 5: the far record joins the ring's
    assert t == 5.2
    assert c.ist[cal.I_FN] == 0
    c = cal.push(c, 5.5, 6.0, 0.0)  # the current bucket: late
    c, taken = _drain(c, 2)
    assert taken == [[5.2, 4.0], [5.5, 0.0], [5.5, 3.0], [5.5, 5.0], [5.5, 6.0]]


# --------------------------------------------------------------------------- the clock


def test_a_record_before_the_current_bucket_still_comes_out_first() -> None:
    c = cal.new(2, 1.0, slots=8)
    c = cal.push(c, 5.5, 1.0, 0.0)
    c, t = cal.first(c)  # nothing before bucket 5: it is loaded
    assert t == 5.5
    assert c.ist[cal.I_BUCKET] == 5
    c = cal.push(c, 2.0, 2.0, 0.0)  # before the bucket's start (5.0)
    c = cal.push(c, 0.0, 3.0, 0.0)
    c = cal.push(c, 5.25, 4.0, 0.0)  # inside the current bucket, before its first record
    c = cal.push(c, 6.0, 5.0, 0.0)  # the next bucket: the ring
    assert cal.size(c) == 5
    c, t = cal.first(c)
    assert t == 0.0
    assert cal.size(c) == 5
    c, taken = _drain(c, 2)
    assert taken == [[0.0, 3.0], [2.0, 2.0], [5.25, 4.0], [5.5, 1.0], [6.0, 5.0]]


def test_first_jumps_over_an_empty_ring_to_far_records() -> None:
    c = cal.new(2, 1.0, slots=4)
    c = cal.push(c, 2e7, 1.0, 0.0)
    c = cal.push(c, 1e7 + 0.5, 2.0, 0.0)
    c = cal.push(c, 1e7, 3.0, 0.0)
    c = cal.push(c, 1e7, 4.0, 0.0)
    assert c.ist[cal.I_FN] == 4
    c, t = cal.first(c)
    assert t == 1e7
    assert c.ist[cal.I_BUCKET] == 10_000_000  # no walk through the empty buckets in between
    assert _take(c, 2) == [1e7, 3.0]
    c = cal.push(c, 1e7 + 2.5, 5.0, 0.0)  # in the ring of the new clock
    c = cal.push(c, 3.0, 6.0, 0.0)  # long before it: late, and first
    c, taken = _drain(c, 2)
    assert taken == [[3.0, 6.0], [1e7, 4.0], [1e7 + 0.5, 2.0], [1e7 + 2.5, 5.0], [2e7, 1.0]]


# --------------------------------------------------------------------------- memory


def test_blocks_are_recycled_over_rounds_of_push_and_drain() -> None:
    bucket_s, slots, per_bucket = 1.0, 8, cal.BLOCK + 44  # two blocks per bucket
    c = cal.new(3, bucket_s, slots=slots, blocks=1)
    rng = np.random.default_rng(11)
    sizes = []
    for r in range(10):
        # the eight buckets after the current one (the last bucket of the previous round)
        xs = (
            slots * r
            + rng.integers(slots, size=slots * per_bucket)
            + rng.random(slots * per_bucket)
        )
        for i, x in enumerate(xs):
            c = cal.push(c, float(x), float(i), float(r))
        assert c.ist[cal.I_LN] == 0
        assert c.ist[cal.I_FN] == 0
        c, taken = _drain(c, 3)
        assert [row[0] for row in taken] == sorted(xs.tolist())
        assert {row[2] for row in taken} == {float(r)}
        sizes.append(c.pool.shape[0])
    assert sizes[0] >= 2 * slots * cal.BLOCK
    assert sizes == [sizes[0]] * len(sizes)


def test_a_steady_queue_does_not_grow_the_pool() -> None:
    c = cal.new(2, 0.5, slots=16, blocks=1)
    twin = Twin()
    rng = np.random.default_rng(3)
    for i in range(200):  # a queue of about 200 records, kept at that length
        x = float(rng.exponential(4.0))
        c = cal.push(c, x, float(i), 0.0)
        twin.push(x, float(i), 0.0)
    sizes = []
    for i in range(200, 12_000):
        c, t = cal.first(c)
        assert _take(c, 2) == list(twin.take())[:2]
        x = t + float(rng.exponential(4.0))
        c = cal.push(c, x, float(i), 0.0)
        twin.push(x, float(i), 0.0)
        if i % 1000 == 0:
            sizes.append(c.pool.shape[0])
    assert cal.size(c) == len(twin) == 200
    # fewer than a block's worth of records in each of the 16 slots: at most 16 blocks in use,
    # and the pool doubles only when every block is in use
    assert max(sizes) <= 32 * cal.BLOCK
    assert sizes[-1] == sizes[len(sizes) // 2]


def test_late_and_far_heaps_grow_past_their_initial_rows() -> None:
    c = cal.new(2, 1.0, slots=2)
    rows = c.late.shape[0]
    c = cal.push(c, 10.5, -1.0, 0.0)
    c, _ = cal.first(c)  # bucket 10
    for i in range(3 * rows):
        c = cal.push(c, 10.9 - 0.2 * i, float(i), 0.0)  # late (bucket 10 or before), latest first
        c = cal.push(c, 1000.0 + i, float(i), 0.0)  # far
    assert c.late.shape[0] > rows
    assert c.far.shape[0] > rows
    c, taken = _drain(c, 2)
    assert [row[0] for row in taken] == sorted(row[0] for row in taken)
    assert len(taken) == 6 * rows + 1


# --------------------------------------------------------------------------- edges


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width": 0}, "width"),
        ({"width": 4}, "width"),
        ({"bucket_s": 0.0}, "bucket_s"),
        ({"bucket_s": 0.1}, "bucket_s"),
        ({"bucket_s": 3.0}, "bucket_s"),
        ({"bucket_s": -1.0}, "bucket_s"),
        ({"bucket_s": math.nan}, "bucket_s"),
        ({"bucket_s": math.inf}, "bucket_s"),
        ({"slots": 0}, "slots"),
        ({"blocks": 0}, "blocks"),
    ],
)
def test_new_rejects_bad_arguments(kwargs: dict[str, Any], name: str) -> None:
    args: dict[str, Any] = {"width": 2, "bucket_s": 1.0, "slots": 8, "blocks": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        cal.new(**args)


def test_an_empty_calendar_has_no_times_and_first_is_inf() -> None:
    c = cal.new(3, 0.5, slots=4)
    assert cal.times(c).shape == (0,)
    assert cal.size(c) == 0
    c, t = cal.first(c)
    assert t == INF
    assert cal.size(c) == 0
    c = cal.push(c, 1.0, 2.0, 3.0)
    assert cal.times(c).tolist() == [1.0]
    c, t = cal.first(c)
    c, t2 = cal.first(c)  # first twice: same answer, nothing taken
    assert t == t2 == 1.0
    assert cal.size(c) == 1
    assert _take(c, 3) == [1.0, 2.0, 3.0]
    c, t = cal.first(c)
    assert t == INF
    assert cal.size(c) == 0
    assert cal.times(c).shape == (0,)


def test_take_writes_time_then_width_minus_one_payload_values() -> None:
    for width in (1, 2, 3):
        c = cal.new(width, 1.0, slots=4)
        c = cal.push(c, 0.5, 7.0, 8.0)  # columns beyond the width are dropped
        c, _ = cal.first(c)
        out = np.full(3, -5.0)
        cal.take(c, out)
        assert out.tolist() == [0.5, 7.0, 8.0][:width] + [-5.0] * (3 - width)


def _due(c: Any, t: float) -> tuple[Any, float]:
    """The earliest time if it may be due by ``t``, loading only up to ``t`` (as the kernels do)."""
    if cal.stale(c.ist, t, c.bucket_s):
        c = cal.load(c, t)
    return c, cal.peek(c.cur, c.late, c.ist)


@pytest.mark.parametrize("slots", [1, 3, 64, 8192])
@pytest.mark.parametrize(("seed", "bucket_s"), [(0, 1.0), (1, 0.25), (2, 4.0)])
def test_loading_up_to_a_clock_hands_out_every_due_record_in_order(
    slots: int, seed: int, bucket_s: float
) -> None:
    """A clock moves on; at each step every record due by then comes out, in (time, push) order.

    Loads only happen up to the clock, so a bucket is often left for later, and records pushed
    meanwhile into an earlier bucket (in the ring or beyond it) must still come out in time.
    """
    rng = np.random.default_rng(seed)
    c = cal.new(3, bucket_s, slots=slots, blocks=1)
    twin = Twin()
    now = 0.0
    for step in range(3_000):
        now += float(rng.exponential(0.5))
        while True:
            c, t = _due(c, now)
            if t > now:
                break
            want = twin.take()
            assert _take(c, 3) == list(want), step
        assert not twin.heap or twin.first() > now, (step, twin.first(), now)
        for _ in range(int(rng.integers(0, 4))):
            kind = rng.integers(0, 4)
            scale = [0.0, 1.0, 40.0, 4000.0][kind]
            x = now + (rng.exponential(scale) if scale else 0.0)
            if rng.random() < 0.1:
                x = float(np.ceil(x))  # on a bucket boundary
            c = cal.push(c, float(x), float(step), float(kind))
            twin.push(float(x), float(step), float(kind))
        assert cal.size(c) == len(twin)
    c, rest = _drain(c, 3)
    assert rest == [list(twin.take()) for _ in range(len(twin))]


def test_a_far_record_pushed_before_a_postponed_bucket_is_due_in_time() -> None:
    """A load postponed because the next record is far away; then an earlier far record."""
    c = cal.new(2, 1.0, slots=3)
    c = cal.push(c, 100.0, 0.0, 0.0)
    c, t = _due(c, 5.0)
    assert t == INF  # bucket 100 is not loaded at 5 s
    c = cal.push(c, 50.0, 1.0, 0.0)  # beyond the ring, before bucket 100
    c, t = _due(c, 60.0)
    assert t == 50.0
    assert _take(c, 2) == [50.0, 1.0]


def test_a_postponed_load_moves_the_ring_to_the_clock() -> None:
    """Nothing due until bucket 100: at 5.5 s the ring starts after bucket 5, so a record pushed
    for 40 s goes to the ring (not ``far``), and one for 5.75 s to ``late``."""
    c = cal.new(2, 1.0, slots=64)
    c = cal.push(c, 100.0, 0.0, 0.0)
    c, t = _due(c, 5.5)
    assert t == INF
    assert c.ist[cal.I_BUCKET] == 5
    assert c.ist[cal.I_FN] == 1  # the record for 100 s, pushed when the ring ended at 63 s
    c = cal.push(c, 40.0, 1.0, 0.0)
    assert c.ist[cal.I_FN] == 1  # 40 s is within the moved ring
    c = cal.push(c, 5.75, 2.0, 0.0)
    assert c.ist[cal.I_LN] == 1
    c, taken = _drain(c, 2)
    assert taken == [[5.75, 2.0], [40.0, 1.0], [100.0, 0.0]]


def test_load_with_records_still_to_come_and_take_from_nothing_are_refused_safely() -> None:
    c = cal.new(2, 1.0, slots=8)
    for x in (1.5, 1.25, 3.5):
        c = cal.push(c, x, x, 0.0)
    c, t = cal.first(c)
    assert t == 1.25
    c = cal.load(c, INF)  # bucket 1 is still being read: nothing happens
    assert sorted(cal.times(c).tolist()) == [1.25, 1.5, 3.5]
    c, taken = _drain(c, 2)
    assert taken == [[1.25, 1.25], [1.5, 1.5], [3.5, 3.5]]
    with pytest.raises(ValueError, match="no record"):
        cal.take(c, np.zeros(2))
    assert cal.size(c) == 0
