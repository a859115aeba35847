"""Dropping some connected listeners of nodes that stay up (``sim.kernels.crash.drop_listeners``).

Exact tests: who is dropped (against a plain walk of the release calendar), what the nodes and the
fleet hold afterwards and once the stale records come due, joins in flight and timed-out attempts
left alone, the reconnect times (against the same draws made by hand), the listener count and the
peak (against the same run without the drop), the engine's quiet tail, a crash after a partial
drop, and determinism; one statistical test of the reconnecting share (binomial, 4 sigma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from sim.config import PlatformConfig
from sim.kernels import calendar, pipeline, retry, tally
from sim.kernels import rng as rn
from sim.kernels.stats import counts_up_to
from sim.model.fleet import EdgeFleet
from sim.model.joins import JoinPipeline
from sim.model.metrics import COUNTERS
from sim.policies.admission import NoAdmission
from sim.policies.client import NoRetry
from sim.streams import states

PLATFORM = PlatformConfig(
    nodes=3,
    join_workers=2,
    join_service_mean_s=1 / 6,
    join_queue_cap=30,
    join_timeout_s=2.0,
    connections_per_node=50,
)
SESSION_S = 200.0
T = 10.0  # the drop, at a tick end
CLIENT = NoRetry()  # no retries: the retry calendar holds the reconnects only
MAX_SIM_S = 20_000.0


def pipe_of(platform: PlatformConfig = PLATFORM, seed: int = 3) -> JoinPipeline:
    return JoinPipeline(EdgeFleet(platform), NoAdmission(), CLIENT, SESSION_S, states(seed))


@dataclass
class Driver:
    """Step a pipeline tick by tick (1 s) like the engine, checking the fleet at each tick end."""

    pipe: JoinPipeline
    arrivals: np.ndarray
    t: float = 0.0
    ticks: list[dict[str, int]] = field(default_factory=list)
    concurrent: list[int] = field(default_factory=list)

    def tick(self) -> None:
        t_end = self.t + 1.0
        batch = self.arrivals[(self.arrivals >= self.t) & (self.arrivals < t_end)]
        counts = np.zeros(pipeline.N_COUNTERS, dtype=np.int64)
        self.pipe.step(t_end, batch, counts)
        f = self.pipe.fleet
        _, connections = f.snapshot(t_end)
        # the connections held are the nodes' counts: stale records are in neither
        assert connections == f.cn.sum() and np.all(f.cn >= 0), (t_end, connections, f.cn)
        assert f.epoch[-1] >= 0 and self.pipe.concurrent >= 0
        self.ticks.append({c: int(counts[i]) for c, i in COUNTERS.items()})
        self.concurrent.append(self.pipe.concurrent)
        self.t = t_end

    def to(self, until: float) -> None:
        while self.t < until:
            self.tick()

    def to_end(self) -> None:
        """Until idle, and then past every queued release record (the stale ones too)."""
        while not self.pipe.idle:
            assert self.t < MAX_SIM_S, "never idle"
            self.tick()
        self.to(math.floor(max(calendar.times(self.pipe.fleet.rel), default=0.0)) + 1.0)

    def total(self, counter: str) -> int:
        return sum(tick[counter] for tick in self.ticks)


def driver(
    seed: int = 3, n: int = 90, until: float = T, platform: PlatformConfig = PLATFORM
) -> Driver:
    arrivals = np.sort(np.random.default_rng(seed).uniform(0.0, until - 2.0, n))
    d = Driver(pipe_of(platform, seed), arrivals)
    d.to(until)
    return d


def records(rel: calendar.Calendar) -> list[tuple[float, int, int]]:
    """Every queued release record ``(time, node code, join row)``: a plain walk of the calendar."""
    ist = rel.ist
    rows = [rel.cur[i] for i in range(ist[calendar.I_CI], ist[calendar.I_CN])]
    rows += [rel.late[i] for i in range(ist[calendar.I_LN])]
    rows += [rel.far[i] for i in range(ist[calendar.I_FN])]
    for slot in range(rel.ring.shape[0]):
        blk = int(rel.ring[slot, 0])
        while blk >= 0:
            n = rel.ring[slot, 2] if blk == rel.ring[slot, 1] else calendar.BLOCK
            rows += [rel.pool[i] for i in range(blk * calendar.BLOCK, blk * calendar.BLOCK + n)]
            blk = int(rel.link[blk])
    assert len(rows) == calendar.size(rel)
    return [(float(r[0]), int(r[1]), int(r[2])) for r in rows]


@dataclass
class Held:
    """A node's current-epoch records at ``t``, by kind (join rows ascending)."""

    connected: list[int]
    in_flight: list[int]
    timed_out: int  # records of attempts that timed out (row -1), still holding a connection


def held(pipe: JoinPipeline, node: int, t: float) -> Held:
    f = pipe.fleet
    h = Held([], [], 0)
    for when, code, row in records(f.rel):
        if code % pipeline.EPOCH_SPAN != node or code // pipeline.EPOCH_SPAN != f.epoch[node]:
            continue
        if row < 0:
            h.timed_out += int(when > t)
        elif pipe.jr[row, 0] > t:
            h.in_flight.append(row)
        elif pipe.jr[row, 1] > t:
            h.connected.append(row)
    h.connected.sort()
    h.in_flight.sort()
    return h


def moved(before: np.ndarray, after: np.ndarray) -> list[int]:
    """The join rows whose departure changed."""
    return np.flatnonzero(after[: before.shape[0], 1] != before[:, 1]).tolist()


# ---------------------------------------------------------------------------------------------


def test_drops_the_first_quota_connected_listeners_of_each_node_and_the_node_stays_up() -> None:
    d = driver()
    pipe, f = d.pipe, d.pipe.fleet
    on = [held(pipe, node, T) for node in range(3)]
    assert len(on[0].connected) > 3 and 0 < len(on[1].connected) < 1000 and on[2].connected
    cn, up, epoch = f.cn.copy(), f.up.copy(), f.epoch.copy()
    _, connections = f.snapshot(T)
    jr = pipe.jr.copy()
    total = pipe.drop_listeners(np.array([3, 1000, 0]), T)
    expected = [3, len(on[1].connected), 0]
    assert total == sum(expected)
    gone = on[0].connected[:3] + on[1].connected
    assert moved(jr, pipe.jr) == sorted(gone)
    assert np.all(pipe.jr[gone, 1] == T) and np.array_equal(pipe.jr[:, 0], jr[:, 0])
    assert f.cn.tolist() == (cn - expected).tolist()
    assert f.snapshot(T)[1] == connections - total
    assert f.up.tolist() == up.tolist() and f.n_up == 3
    assert f.epoch[:-1].tolist() == epoch[:-1].tolist() and f.epoch[-1] == total
    stale = {
        r for _, code, r in records(f.rel) if code // pipeline.EPOCH_SPAN == pipeline.STALE_EPOCH
    }
    assert stale == set(gone)
    assert sorted(f.pending()[1]) == sorted(w for w, _, r in records(f.rel) if r not in stale)
    d.to_end()
    assert d.total("dropped") == total == d.total("reconnects")
    assert d.total("joined") == d.total("left") == int(pipe.istate[pipeline.S_RECORDED])
    assert pipe.idle and pipe.concurrent == 0 and pipe.pending_retries == 0
    assert f.cn.tolist() == [0, 0, 0] and f.epoch[-1] == 0 and f.snapshot(d.t) == (0, 0)
    assert calendar.size(f.rel) == 0


def test_joins_in_flight_and_timed_out_attempts_are_not_dropped() -> None:
    """One node, a trickle and then a burst it cannot serve within a 0.5 s timeout: at ``T`` it
    holds connected listeners, joins in flight and attempts that timed out; all the connected
    ones go, nothing else."""
    one = replace(PLATFORM, nodes=1, join_timeout_s=0.5)
    rng = np.random.default_rng(5)
    arrivals = np.sort(np.concatenate([rng.uniform(0, 8, 20), rng.uniform(9, 10, 60)]))
    d = Driver(pipe_of(one, 5), arrivals)
    d.to(T)
    pipe, f = d.pipe, d.pipe.fleet
    before = held(pipe, 0, T)
    assert before.connected and before.in_flight and before.timed_out
    peak = pipe.peak  # reached by a join still in flight
    assert peak[1] > T
    cn = int(f.cn[0])
    jr = pipe.jr.copy()
    assert pipe.drop_listeners(np.array([1000]), T) == len(before.connected)
    assert moved(jr, pipe.jr) == before.connected
    after = held(pipe, 0, T)
    assert after == Held([], before.in_flight, before.timed_out)
    assert f.cn[0] == cn - len(before.connected)
    # the peak still to come is lower now
    n = int(pipe.istate[pipeline.S_RECORDED])
    assert pipe.peak == tally.peak(pipe.jr[:n], pipe.bins, 1.0)
    assert pipe.peak[0] < peak[0]
    d.to_end()
    assert d.total("joined") == d.total("left") == int(pipe.istate[pipeline.S_RECORDED])
    assert d.total("reconnects") == len(before.connected)
    assert pipe.idle and f.cn[0] == 0 and f.epoch[-1] == 0


@pytest.mark.parametrize("share", [1.0, 0.5, 0.0])
def test_the_dropped_reconnect_at_the_times_drawn_from_the_reconnect_stream(share: float) -> None:
    """The reconnect times, drawn by hand from a copy of the streams in the order of the join
    records (node by node): ``T + reconnect_min_s + Exp(reconnect_mean_s)``, a uniform draw
    first when ``share < 1``."""
    d = driver()
    pipe = d.pipe
    assert calendar.size(pipe.ret) == 0
    gone = [row for node in range(3) for row in held(pipe, node, T).connected[:10]]
    st = pipe.states.copy()
    _, cp = CLIENT.kernel()
    want = []
    for _ in gone:
        if share < 1.0 and rn.uniform(st, pipeline.R_RECONNECT) >= share:
            continue
        wait = rn.exponential(st, pipeline.R_RECONNECT, cp[retry.P_RECONNECT_MEAN])
        want.append(T + cp[retry.P_RECONNECT_MIN] + wait)
    assert pipe.drop_listeners(np.array([10, 10, 10]), T, share) == 30 == len(gone)
    assert sorted(calendar.times(pipe.ret)) == sorted(want)
    assert pipe.pending_retries == len(want)
    assert np.array_equal(pipe.states, st)  # those draws and no other
    d.to(T + cp[retry.P_RECONNECT_MIN])
    assert d.total("reconnects") == 0  # nobody back before reconnect_min_s
    assert d.ticks[int(T)]["dropped"] == 30  # counted in the tick after the drop
    d.to_end()
    assert d.total("reconnects") == len(want)
    assert d.total("joined") == d.total("left")
    assert pipe.idle and pipe.fleet.epoch[-1] == 0


def test_a_share_of_one_half_reconnects_within_a_binomial_bound() -> None:
    big = replace(PLATFORM, nodes=4, connections_per_node=1000)
    d = driver(seed=11, n=2000, until=100.0, platform=big)
    dropped = d.pipe.drop_listeners(np.full(4, 1000), d.t, 0.5)
    assert dropped > 1000
    d.to(d.t + 200.0)  # Exp(5 s) waits: all back by then
    assert d.pipe.pending_retries == 0
    assert abs(d.total("reconnects") - dropped / 2) <= 4 * math.sqrt(dropped / 4)


def test_the_listener_count_and_the_peak_against_the_same_run_without_the_drop() -> None:
    """Nothing else happens after ``T`` (no arrivals, no retries, no reconnects): the run with the
    drop has, at every later tick end, the listeners of the run without it less the dropped ones
    that would still be there; the peak (before ``T``) is the same; the engine's quiet tail
    counts the same listeners as the ticks."""
    a, b = driver(), driver()
    peak = a.pipe.peak
    assert peak[1] <= T and a.pipe.only_departures_left
    jr = a.pipe.jr.copy()
    dropped = a.pipe.drop_listeners(np.array([7, 0, 40]), T, share=0.0)
    gone = moved(jr, a.pipe.jr)
    assert len(gone) == dropped > 7 and a.pipe.pending_retries == 0
    # the engine's tail (``Engine._tail``), computed at T
    departures = a.pipe.pending_departures()
    ends = np.arange(T + 1.0, T + 1001.0)
    tail = a.pipe.concurrent - counts_up_to(departures, ends)
    releases = a.pipe.fleet.pending()[1]
    assert releases.size == a.pipe.fleet.snapshot(T)[1]
    before = a.pipe.concurrent
    a.tick()  # at T + 1: before − dropped, less whoever else left in that tick
    n = int(a.pipe.istate[pipeline.S_RECORDED])
    others = np.setdiff1d(np.arange(n), gone)
    left_anyway = int(np.count_nonzero((jr[others, 1] >= T) & (jr[others, 1] < T + 1.0)))
    assert a.concurrent[-1] == before - dropped - left_anyway
    assert a.pipe.peak == b.pipe.peak == peak
    a.to_end()
    b.to(a.t)
    for i, t_end in enumerate(ends[: len(a.concurrent) - int(T)]):
        left_later = int(np.count_nonzero(jr[gone, 1] >= t_end))
        assert a.concurrent[int(T) + i] == b.concurrent[int(T) + i] - left_later, t_end
        assert a.concurrent[int(T) + i] == tail[i], t_end
    assert a.pipe.peak == peak
    assert a.total("left") == b.total("left") == a.total("joined")


def test_a_crash_after_a_partial_drop_drops_exactly_the_rest() -> None:
    d = driver()
    pipe, f = d.pipe, d.pipe.fleet
    jr = pipe.jr.copy()
    assert pipe.drop_listeners(np.array([5, 0, 0]), T) == 5
    d.tick()
    rest = held(pipe, 0, d.t)
    stale = int(f.epoch[-1])
    cn = int(f.cn[0])
    assert pipe.crash([0], d.t, d.t + 30.0) == [len(rest.connected) + len(rest.in_flight)]
    assert f.epoch[-1] == stale + cn
    gone = moved(jr, pipe.jr)
    assert len(gone) == 5 + len(rest.connected) + len(rest.in_flight)
    d.to_end()
    assert d.total("dropped") == len(gone) == d.total("reconnects")
    assert d.total("joined") == d.total("left")
    assert pipe.idle and f.cn.tolist() == [0, 0, 0] and f.epoch[-1] == 0


def _scenario(seed: int) -> tuple[list[dict[str, int]], list[int], np.ndarray, tuple[int, float]]:
    d = driver(seed)
    d.pipe.drop_listeners(np.array([4, 9, 2]), T, 0.5)
    d.to(T + 5.0)
    d.pipe.drop_listeners(np.array([0, 3, 30]), d.t, 0.5)
    d.tick()
    d.pipe.crash([1], d.t, d.t + 20.0)
    d.to_end()
    return d.ticks, d.concurrent, d.pipe.jr[: d.pipe.istate[pipeline.S_RECORDED]], d.pipe.peak


def test_same_seed_same_results() -> None:
    ticks, concurrent, jr, peak = _scenario(8)
    again = _scenario(8)
    assert (ticks, concurrent, peak) == (again[0], again[1], again[3])
    assert np.array_equal(jr, again[2])
    other = _scenario(9)[2]  # and the seed matters
    assert other.shape != jr.shape or not np.array_equal(other, jr)


def test_the_wrapper_checks_its_arguments() -> None:
    d = driver()
    with pytest.raises(ValueError, match="one per node"):
        d.pipe.drop_listeners(np.array([1, 1]), T)
    with pytest.raises(ValueError, match="one per node"):
        d.pipe.drop_listeners(np.array([1, -1, 0]), T)
    with pytest.raises(ValueError, match="already counted"):
        d.pipe.drop_listeners(np.array([1, 1, 1]), T - 1.0)
    cn, epoch, jr = d.pipe.fleet.cn.copy(), d.pipe.fleet.epoch.copy(), d.pipe.jr.copy()
    assert d.pipe.drop_listeners(np.zeros(3, dtype=np.int64), T) == 0
    assert np.array_equal(d.pipe.fleet.cn, cn) and np.array_equal(d.pipe.fleet.epoch, epoch)
    assert np.array_equal(d.pipe.jr, jr)
