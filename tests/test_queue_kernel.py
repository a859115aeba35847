"""The join-queue kernel against hand-worked event logs and its plain-Python twin.

``sim.kernels.mmc`` drives ``sim.kernels.queue.offer`` (the engine's join queue). These tests pin
its semantics on tiny inputs worked out by hand, then require exact equality with the twin in
``tests/twins/queue.py`` on seeded random inputs (same draws fed to both), across batch boundaries.
Under ``NUMBA_DISABLE_JIT=1`` the kernels run as Python, so the random inputs are kept small.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.kernels.mmc import (
    QUEUE_FULL,
    SERVED,
    TIMEOUT,
    JoinQueueSim,
    QueueState,
    simulate_arrays,
)
from tests.twins import queue as twin

NO_JIT = bool(numba.config.DISABLE_JIT)
N = 300 if NO_JIT else 20_000  # customers per random test
INF = math.inf


def _log(
    times: list[float],
    services: list[float],
    patiences: list[float],
    c: int,
    wcap: int | None = None,
) -> tuple[list[int], list[float]]:
    outcomes, starts = simulate_arrays(times, services, patiences, c, wcap)
    assert outcomes.dtype == np.int8
    return outcomes.tolist(), starts.tolist()


# --------------------------------------------------------------------------- hand-worked logs


def test_patience_runs_out_while_the_worker_is_busy() -> None:
    # c=1: the first is served over [0, 1]; the others would wait 0.9 and 0.8 > 0.5 and give up
    outcomes, starts = _log([0.0, 0.1, 0.2], [1.0] * 3, [0.5] * 3, c=1)
    assert outcomes == [SERVED, TIMEOUT, TIMEOUT]
    assert starts == [0.0, 0.1, 0.2]


def test_patient_customers_are_served_in_arrival_order() -> None:
    outcomes, starts = _log([0.0, 0.1, 0.2], [1.0] * 3, [INF] * 3, c=1)
    assert outcomes == [SERVED] * 3
    assert starts == [0.0, 1.0, 2.0]


def test_an_abandoner_never_takes_a_worker() -> None:
    # the second gives up at 0.6; the third (patience 2) starts at 1, not after the second
    outcomes, starts = _log([0.0, 0.1, 0.2], [1.0] * 3, [INF, 0.5, 2.0], c=1)
    assert outcomes == [SERVED, TIMEOUT, SERVED]
    assert starts == [0.0, 0.1, 1.0]


def test_two_workers() -> None:
    # workers free at 1 and 1.5 after the first two; the third waits for the earlier one
    outcomes, starts = _log([0.0, 0.5, 0.75, 0.8], [1.0, 1.0, 2.0, 0.1], [INF] * 4, c=2)
    assert outcomes == [SERVED] * 4
    assert starts == [0.0, 0.5, 1.0, 1.5]


def test_waiting_room_cap_blocks_the_next_waiter() -> None:
    # one waiting place: the second waits (until 1), the third finds it taken
    outcomes, starts = _log([0.0, 0.1, 0.2], [1.0] * 3, [INF] * 3, c=1, wcap=1)
    assert outcomes == [SERVED, SERVED, QUEUE_FULL]
    assert starts == [0.0, 1.0, 0.2]


def test_an_abandoner_holds_its_waiting_place_until_it_gives_up() -> None:
    # the second holds the only place until 0.6: the third (0.2) is blocked, the fourth (0.7)
    # finds it free again and starts at 1 (wait 0.3 <= 0.5)
    outcomes, starts = _log([0.0, 0.1, 0.2, 0.7], [1.0] * 4, [0.5] * 4, c=1, wcap=1)
    assert outcomes == [SERVED, TIMEOUT, QUEUE_FULL, SERVED]
    assert starts == [0.0, 0.1, 0.2, 1.0]


def test_a_waiting_place_is_free_again_at_the_waiters_start() -> None:
    # the second waits over [0.5, 1]; at t = 1 exactly its place is free, so the third may wait
    outcomes, starts = _log([0.0, 0.5, 1.0], [1.0, 0.5, 1.0], [INF] * 3, c=1, wcap=1)
    assert outcomes == [SERVED, SERVED, SERVED]
    assert starts == [0.0, 1.0, 1.5]


def test_no_waiting_room_is_a_pure_loss_system() -> None:
    # K = c = 2: whoever finds both workers busy is lost; a worker free at t serves at t
    times = [0.0, 0.1, 0.2, 1.5, 2.0]
    outcomes, starts = _log(times, [2.0, 1.0, 1.0, 1.0, 1.0], [INF] * 5, c=2, wcap=0)
    assert outcomes == [SERVED, SERVED, QUEUE_FULL, SERVED, SERVED]
    assert starts == times


def test_zero_patience_leaves_at_once_if_it_must_wait() -> None:
    outcomes, starts = _log([0.0, 0.5, 1.0], [1.0] * 3, [0.0] * 3, c=1)
    assert outcomes == [SERVED, TIMEOUT, SERVED]
    assert starts == [0.0, 0.5, 1.0]


def test_state_carries_across_batches_by_hand() -> None:
    state = QueueState.empty(1, wcap=1)
    a = simulate_arrays([0.0, 0.1], [1.0, 1.0], [INF, INF], 1, 1, state)
    b = simulate_arrays([0.2, 1.5], [1.0, 1.0], [INF, INF], 1, 1, state)
    assert a[0].tolist() == [SERVED, SERVED]
    assert a[1].tolist() == [0.0, 1.0]
    # the waiting place is held until 1 and the worker busy until 2
    assert b[0].tolist() == [QUEUE_FULL, SERVED]
    assert b[1].tolist() == [0.2, 2.0]
    assert state.last_t == 1.5


# --------------------------------------------------------------------------- kernel vs twin


def _draws(
    seed: int, n: int, lam: float, mu: float, theta: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0 / lam, n))
    services = rng.exponential(1.0 / mu, n)
    patiences = rng.exponential(1.0 / theta, n) if theta else np.full(n, INF)
    return times, services, patiences


CASES = [  # (c, wcap, lam, mu, theta): loss, delay, capped, impatient, overloaded
    (1, None, 0.9, 1.0, None),
    (4, 0, 3.5, 1.0, None),
    (3, 5, 3.3, 1.0, None),
    (5, None, 6.0, 1.0, 0.7),
    (2, 3, 5.0, 1.0, 2.0),
    (1, None, 3.0, 1.0, None),  # unstable: the waiting room grows without bound
]


@pytest.mark.parametrize(("c", "wcap", "lam", "mu", "theta"), CASES)
def test_kernel_equals_twin(
    c: int, wcap: int | None, lam: float, mu: float, theta: float | None
) -> None:
    times, services, patiences = _draws(11, N, lam, mu, theta)
    outcomes, starts = simulate_arrays(times, services, patiences, c, wcap)
    t_outcomes, t_starts = twin.simulate_arrays(times, services, patiences, c, wcap)
    np.testing.assert_array_equal(outcomes, t_outcomes)
    np.testing.assert_array_equal(starts, t_starts)
    assert len(set(outcomes.tolist())) > 1 or (wcap is None and theta is None)


@pytest.mark.parametrize(("c", "wcap", "lam", "mu", "theta"), CASES)
def test_batches_give_the_same_log(
    c: int, wcap: int | None, lam: float, mu: float, theta: float | None
) -> None:
    times, services, patiences = _draws(12, N, lam, mu, theta)
    whole = simulate_arrays(times, services, patiences, c, wcap)
    cuts = np.sort(np.random.default_rng(1).choice(np.arange(1, N), size=7, replace=False))
    state = QueueState.empty(c, wcap)
    tq = twin.TwinQueue(c, wcap)
    parts, t_parts = [], []
    for idx in np.split(np.arange(N), cuts):
        parts.append(simulate_arrays(times[idx], services[idx], patiences[idx], c, wcap, state))
        t_parts.append(twin.simulate_arrays(times[idx], services[idx], patiences[idx], c, wcap, tq))
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in t_parts]), whole[1])
    assert sorted(state.free.tolist()) == sorted(tq.free)


def test_unlimited_waiting_room_grows() -> None:
    n = 500
    times = np.linspace(0.0, 1.0, n)  # far more arrivals than one worker can serve
    outcomes, starts = simulate_arrays(times, np.ones(n), np.full(n, INF), 1)
    assert (outcomes == SERVED).all()
    np.testing.assert_array_equal(starts, np.arange(n, dtype=np.float64))


@settings(max_examples=40 if NO_JIT else 200, deadline=None)
@given(
    c=st.integers(1, 3),
    wcap=st.one_of(st.none(), st.integers(0, 3)),
    gaps=st.lists(st.integers(0, 3), min_size=1, max_size=25),
    data=st.data(),
)
def test_kernel_equals_twin_with_ties(
    c: int, wcap: int | None, gaps: list[int], data: st.DataObject
) -> None:
    # times, services and patiences on a coarse grid, so arrivals coincide with starts, ends and
    # give-up times: the tie rules (a worker or a waiting place free *at* t is free) must agree
    n = len(gaps)
    times = np.cumsum(np.asarray(gaps, dtype=np.float64) * 0.5)
    grid = st.integers(0, 6).map(lambda k: k * 0.5)
    services = data.draw(st.lists(grid, min_size=n, max_size=n))
    patiences = data.draw(st.lists(st.one_of(grid, st.just(INF)), min_size=n, max_size=n))
    outcomes, starts = simulate_arrays(times, services, patiences, c, wcap)
    t_outcomes, t_starts = twin.simulate_arrays(times, services, patiences, c, wcap)
    assert outcomes.tolist() == t_outcomes
    assert starts.tolist() == t_starts


# --------------------------------------------------------------------------- M/M/c/K+M loop

SIM_CASES = [  # (lam, mu, c, K, theta)
    (0.9, 1.0, 1, None, None),
    (8.0, 1.0, 10, 10, None),
    (4.5, 1.0, 5, 8, None),
    (6.0, 1.0, 5, None, 0.5),
    (6.0, 1.0, 5, 9, 2.0),
]


@pytest.mark.parametrize(("lam", "mu", "c", "K", "theta"), SIM_CASES)
def test_simulation_equals_twin(
    lam: float, mu: float, c: int, K: int | None, theta: float | None
) -> None:
    # the kernel draws from the Generator inside numba; numpy's draws in the twin are the same
    warmup = N // 10
    sim = JoinQueueSim(lam, mu, c, K, theta, rng=np.random.default_rng(5), warmup=warmup)
    got = sim.run(N)
    ref = twin.simulate(lam, mu, c, K, theta, np.random.default_rng(5), N, warmup)
    assert (got.arrivals, got.admitted, got.blocked, got.abandoned, got.waited) == (
        ref.arrivals,
        ref.admitted,
        ref.blocked,
        ref.abandoned,
        ref.waited,
    )
    assert got.wait_sum == ref.wait_sum
    assert got.arrivals == N - warmup
    assert got.admitted + got.blocked == got.arrivals
    assert sim.customers == N


@pytest.mark.parametrize(("lam", "mu", "c", "K", "theta"), SIM_CASES)
def test_simulation_does_not_depend_on_the_batch_size(
    lam: float, mu: float, c: int, K: int | None, theta: float | None
) -> None:
    n = N + 17
    results = []
    for batch in (1000, 37, n):
        rng = np.random.default_rng(9)
        sim = JoinQueueSim(lam, mu, c, K, theta, rng=rng, warmup=123)
        done = 0
        while done < n:
            k = min(batch, n - done)
            sim.run(k)
            done += k
        results.append((sim.stats, sim.clock, sim.customers, rng.random()))
    assert results[0] == results[1] == results[2]


def test_zero_theta_means_infinite_patience() -> None:
    a = JoinQueueSim(4.5, 1.0, 5, 8, None, rng=np.random.default_rng(3)).run(N)
    b = JoinQueueSim(4.5, 1.0, 5, 8, 0.0, rng=np.random.default_rng(3)).run(N)
    assert a == b
    assert a.abandoned == 0


def test_loss_system_never_queues() -> None:
    stats = JoinQueueSim(8.0, 1.0, 10, 10, 1.0, rng=np.random.default_rng(4)).run(N)
    assert stats.waited == stats.abandoned == 0
    assert stats.wait_sum == 0.0
    assert stats.blocked > 0
    assert stats.wq == stats.p_wait == 0.0


def test_stats_before_any_counted_customer_are_nan() -> None:
    stats = JoinQueueSim(1.0, 1.0, 1, rng=np.random.default_rng(0), warmup=10).run(5)
    assert stats.arrivals == 0
    assert math.isnan(stats.wq) and math.isnan(stats.p_block)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": 0.0}, "lam must be a finite number > 0, got 0.0"),
        ({"mu": -1.0}, "mu must be"),
        ({"c": 0}, "c must be an integer >= 1"),
        ({"K": 1}, "K must be an integer >= c = 2"),
        ({"theta": -0.5}, "theta must be a finite number >= 0"),
        ({"warmup": -1}, "warmup must be"),
        ({"rng": 3}, "rng must be a numpy.random.Generator"),
    ],
)
def test_simulation_rejects_bad_parameters(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"lam": 1.0, "mu": 1.0, "c": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        JoinQueueSim(**args)  # type: ignore[arg-type]


def test_arrays_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        simulate_arrays([1.0, 0.5], [1.0, 1.0], [INF, INF], 1)
    state = QueueState.empty(1)
    simulate_arrays([2.0], [1.0], [INF], 1, None, state)
    with pytest.raises(ValueError, match="across batches"):
        simulate_arrays([1.0], [1.0], [INF], 1, None, state)
    with pytest.raises(ValueError, match="one length"):
        simulate_arrays([0.0, 1.0], [1.0], [INF], 1)
    with pytest.raises(ValueError, match="services"):
        simulate_arrays([0.0], [-1.0], [INF], 1)
    with pytest.raises(ValueError, match="patiences"):
        simulate_arrays([0.0], [1.0], [math.nan], 1)
    with pytest.raises(ValueError, match="wcap must be an integer >= 0"):
        simulate_arrays([0.0], [1.0], [INF], 1, -1)
    with pytest.raises(ValueError, match="state has 1 workers, but c = 2"):
        simulate_arrays([3.0], [1.0], [INF], 2, None, state)
