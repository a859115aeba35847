"""The join queue as a textbook queue: M/M/c, M/M/c/K and Erlang A, simulated customer by customer.

To trust the engine's join queue (:func:`sim.kernels.queue.offer`) we run it, alone, in the setting
where queueing theory has exact answers (:mod:`sim.theory`) and compare:

- customers arrive as a Poisson process of rate ``lam``: the gaps between arrivals are independent
  exponential draws of mean ``1 / lam``;
- each needs an exponential service of rate ``mu`` from one of ``c`` identical workers, first come,
  first served;
- at most ``K`` customers are in the system (``c`` in service, ``wcap = K - c`` waiting); an
  arrival that finds ``K`` present is blocked (``QUEUE_FULL``). ``K=None`` means no limit;
- a waiting customer has an exponential patience of rate ``theta``: if service has not started by
  then, it abandons (``TIMEOUT``). ``theta=None`` (or 0) means infinite patience.

Every customer goes through ``queue.offer``, exactly as in the engine; nothing here re-implements
the queue. The random numbers come from one ``np.random.Generator`` passed into the numba kernel,
drawn per customer in a fixed order (interarrival, service, then patience when ``theta > 0``), and
all state (clock, worker-free times, waiting room, counters) lives in arrays that carry from one
call to the next. Simulating ``n`` customers in one call or in batches of any size therefore gives
bit-identical results, which is what lets :mod:`sim.validation` and the tests cut runs freely.

The first ``warmup`` customers are simulated but not counted, so the statistics describe the
stationary queue rather than the empty one the run starts from. Per replication the kernel counts
arrivals, admitted (not blocked), blocked, abandoned, admitted customers who found every worker busy
(``waited``) and the total time admitted customers spent in queue (service start minus arrival for
the served, their patience for the abandoners), from which :class:`JoinQueueStats` forms the
estimates of ``wq``, ``p_wait``, ``p_block`` and ``p_abandon`` defined in :mod:`sim.theory`.

:func:`simulate_arrays` is the same loop on pre-drawn arrival times, services and patiences; it
returns each customer's outcome and service start, for comparison with a plain-Python twin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit

from sim.kernels import heap, queue
from sim.kernels.checks import integer as _integer
from sim.kernels.checks import rate as _rate

SERVED = queue.SERVED
QUEUE_FULL = queue.QUEUE_FULL
TIMEOUT = queue.TIMEOUT

# counters of ``JoinQueueSim`` (int64 array ``counts``)
C_ARRIVALS = 0  # customers counted (after the warm-up)
C_ADMITTED = 1  # not blocked: served or abandoned
C_BLOCKED = 2  # QUEUE_FULL: the system held K customers
C_ABANDONED = 3  # TIMEOUT: patience ran out before service started
C_WAITED = 4  # admitted customers who found every worker busy
N_COUNTS = 5

# integer and float state of ``JoinQueueSim``
S_WN = 0  # waiting-room heap size
S_DONE = 1  # customers simulated so far, warm-up included
F_CLOCK = 0  # arrival time of the last customer
F_WAIT_SUM = 1  # total queue wait of the counted admitted customers

#: ``wcap`` standing for an unlimited waiting room.
UNLIMITED = int(np.iinfo(np.int64).max)
_WROOM_START = 64


@njit(cache=True, inline="always")
def _room_for_one(wroom: np.ndarray, wn: int, wcap: int, t: float) -> tuple[np.ndarray, int]:
    """Make sure ``offer`` at ``t`` can push one waiting-room entry (grow the array if needed)."""
    if wn == wroom.shape[0] and wn < wcap:
        wn = heap.drain(wroom, wn, t)
        if wn == wroom.shape[0]:
            wroom = heap.grow(wroom)
    return wroom, wn


@njit(cache=True)
def _offer_all(
    times: np.ndarray,
    services: np.ndarray,
    patiences: np.ndarray,
    free: np.ndarray,
    wroom: np.ndarray,
    wn: int,
    wcap: int,
    outcomes: np.ndarray,
    starts: np.ndarray,
) -> tuple[np.ndarray, int]:
    for i in range(times.shape[0]):
        t = times[i]
        wroom, wn = _room_for_one(wroom, wn, wcap, t)
        outcome, start, _end, wn = queue.offer(t, patiences[i], services[i], free, wroom, wn, wcap)
        outcomes[i] = outcome
        starts[i] = start
    return wroom, wn


@njit(cache=True)
def _simulate(
    n: int,
    interarrival_mean: float,
    service_mean: float,
    patience_mean: float,
    wcap: int,
    warmup: int,
    rng: np.random.Generator,
    free: np.ndarray,
    wroom: np.ndarray,
    istate: np.ndarray,
    fstate: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    wn = istate[S_WN]
    done = istate[S_DONE]
    t = fstate[F_CLOCK]
    wait_sum = fstate[F_WAIT_SUM]
    for _ in range(n):
        t += rng.exponential(interarrival_mean)
        service = rng.exponential(service_mean)
        patience = rng.exponential(patience_mean) if patience_mean > 0.0 else np.inf
        wroom, wn = _room_for_one(wroom, wn, wcap, t)
        outcome, start, _end, wn = queue.offer(t, patience, service, free, wroom, wn, wcap)
        done += 1
        if done <= warmup:
            continue
        counts[C_ARRIVALS] += 1
        if outcome == QUEUE_FULL:
            counts[C_BLOCKED] += 1
            continue
        counts[C_ADMITTED] += 1
        if outcome == TIMEOUT:
            counts[C_ABANDONED] += 1
            counts[C_WAITED] += 1
            wait_sum += patience
        elif start > t:
            counts[C_WAITED] += 1
            wait_sum += start - t
    istate[S_WN] = wn
    istate[S_DONE] = done
    fstate[F_CLOCK] = t
    fstate[F_WAIT_SUM] = wait_sum
    return wroom


# --------------------------------------------------------------------------- argument checks


def _wcap(wcap: int | None) -> int:
    if wcap is None:
        return UNLIMITED
    return _integer("wcap", wcap, 0, ">= 0 (or None for an unlimited waiting room)")


# --------------------------------------------------------------------------- pre-drawn arrays


@dataclass(eq=False)
class QueueState:
    """The carried state of one join queue, to continue ``simulate_arrays`` with the next batch.

    ``free`` is the heap of the ``c`` worker-free times (``-inf``: never busy), ``wroom[:wn]`` the
    heap of waiting-room exit times and ``last_t`` the last arrival time offered.
    """

    free: npt.NDArray[np.float64]
    wroom: npt.NDArray[np.float64]
    wn: int = 0
    last_t: float = -math.inf

    @classmethod
    def empty(cls, c: int, wcap: int | None = None) -> QueueState:
        """An idle queue with ``c`` workers and room for ``wcap`` waiting (``None``: unlimited)."""
        c = _integer("c", c, 1, ">= 1")
        cap = _wcap(wcap)
        return cls(
            free=np.full(c, -np.inf), wroom=np.empty(min(cap, _WROOM_START), dtype=np.float64)
        )


def simulate_arrays(
    arrival_times: npt.ArrayLike,
    services: npt.ArrayLike,
    patiences: npt.ArrayLike,
    c: int,
    wcap: int | None = None,
    state: QueueState | None = None,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    """Offer pre-drawn customers to a ``c``-worker join queue; return ``(outcomes, starts)``.

    ``arrival_times`` must be non-decreasing (and not before ``state.last_t``); ``services`` and
    ``patiences`` are non-negative (``inf`` for an infinitely patient customer). ``wcap`` is the
    waiting-room size (``K - c``; ``None``: unlimited). ``outcomes`` holds ``SERVED``,
    ``QUEUE_FULL`` or ``TIMEOUT`` and ``starts`` the service start (the arrival time for the blocked
    and the abandoning). Pass the same ``state`` (see :meth:`QueueState.empty`) to successive calls
    to continue one queue across batches; it is updated in place.
    """
    times = np.ascontiguousarray(arrival_times, dtype=np.float64)
    serv = np.ascontiguousarray(services, dtype=np.float64)
    pat = np.ascontiguousarray(patiences, dtype=np.float64)
    if times.ndim != 1 or serv.shape != times.shape or pat.shape != times.shape:
        raise ValueError(
            "arrival_times, services and patiences must be 1-D arrays of one length, got shapes "
            f"{times.shape}, {serv.shape}, {pat.shape}"
        )
    c = _integer("c", c, 1, ">= 1")
    cap = _wcap(wcap)
    if state is None:
        state = QueueState.empty(c, wcap)
    elif state.free.shape != (c,):
        raise ValueError(f"state has {state.free.shape[0]} workers, but c = {c}")
    if not np.all(np.isfinite(times)):
        raise ValueError("arrival_times must be finite")
    if times.size and (np.any(np.diff(times) < 0.0) or times[0] < state.last_t):
        raise ValueError("arrival_times must be non-decreasing (across batches too)")
    if not np.all(np.isfinite(serv)) or np.any(serv < 0.0):
        raise ValueError("services must be finite and >= 0")
    if np.any(np.isnan(pat)) or np.any(pat < 0.0):
        raise ValueError("patiences must be >= 0 (inf for infinite patience)")
    outcomes = np.empty(times.shape[0], dtype=np.int8)
    starts = np.empty(times.shape[0], dtype=np.float64)
    state.wroom, state.wn = _offer_all(
        times, serv, pat, state.free, state.wroom, int(state.wn), cap, outcomes, starts
    )
    if times.size:
        state.last_t = float(times[-1])
    return outcomes, starts


# --------------------------------------------------------------------------- M/M/c/K+M


@dataclass(frozen=True)
class JoinQueueStats:
    """Counts of the customers after the warm-up, and the estimates they give.

    Attributes:
        arrivals: customers counted.
        admitted: not blocked (served or abandoned).
        blocked: turned away because the system held ``K`` customers.
        abandoned: left the queue when their patience ran out.
        waited: admitted customers who found every worker busy on arrival.
        wait_sum: total time in queue of the admitted customers (abandoners: their patience).
    """

    arrivals: int
    admitted: int
    blocked: int
    abandoned: int
    waited: int
    wait_sum: float

    @property
    def wq(self) -> float:
        """Mean time in queue of admitted customers (NaN when none was admitted)."""
        return self.wait_sum / self.admitted if self.admitted else math.nan

    @property
    def p_wait(self) -> float:
        """Share of admitted customers who found every worker busy (NaN when none)."""
        return self.waited / self.admitted if self.admitted else math.nan

    @property
    def p_block(self) -> float:
        """Share of arrivals blocked (NaN when none was counted)."""
        return self.blocked / self.arrivals if self.arrivals else math.nan

    @property
    def p_abandon(self) -> float:
        """Share of arrivals who abandoned (NaN when none was counted)."""
        return self.abandoned / self.arrivals if self.arrivals else math.nan


@dataclass(eq=False)
class JoinQueueSim:
    """One replication of the M/M/c/K+M join queue, run in batches of customers.

    ``K=None``: no capacity limit; ``theta=None`` or 0: infinitely patient customers. ``rng`` is
    consumed in customer order (interarrival, service, then patience when ``theta > 0``); the first
    ``warmup`` customers are simulated but not counted. :meth:`run` may be called any number of
    times: the statistics after ``n`` customers do not depend on how they were split into calls.
    """

    lam: float
    mu: float
    c: int
    K: int | None = None
    theta: float | None = None
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    warmup: int = 0
    _free: npt.NDArray[np.float64] = field(init=False, repr=False)
    _wroom: npt.NDArray[np.float64] = field(init=False, repr=False)
    _istate: npt.NDArray[np.int64] = field(init=False, repr=False)
    _fstate: npt.NDArray[np.float64] = field(init=False, repr=False)
    _counts: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lam = _rate("lam", self.lam)
        self.mu = _rate("mu", self.mu)
        self.c = _integer("c", self.c, 1, ">= 1")
        if self.K is not None:
            self.K = _integer("K", self.K, self.c, f">= c = {self.c} (or None for no limit)")
        if self.theta is not None:
            self.theta = _rate("theta", self.theta, allow_zero=True)
        self.warmup = _integer("warmup", self.warmup, 0, ">= 0")
        if not isinstance(self.rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {self.rng!r}")
        state = QueueState.empty(self.c, self.wcap)
        self._free = state.free
        self._wroom = state.wroom
        self._istate = np.zeros(2, dtype=np.int64)
        self._fstate = np.zeros(2, dtype=np.float64)
        self._counts = np.zeros(N_COUNTS, dtype=np.int64)

    @property
    def wcap(self) -> int | None:
        """Waiting places ``K - c`` (``None``: unlimited)."""
        return None if self.K is None else self.K - self.c

    @property
    def customers(self) -> int:
        """Customers simulated so far, the warm-up included."""
        return int(self._istate[S_DONE])

    @property
    def clock(self) -> float:
        """Arrival time of the last simulated customer."""
        return float(self._fstate[F_CLOCK])

    def run(self, n: int) -> JoinQueueStats:
        """Simulate the next ``n`` customers; return the statistics so far (after the warm-up)."""
        n = _integer("n", n, 0, ">= 0")
        patience_mean = 1.0 / self.theta if self.theta else 0.0
        self._wroom = _simulate(
            n,
            1.0 / self.lam,
            1.0 / self.mu,
            patience_mean,
            _wcap(self.wcap),
            self.warmup,
            self.rng,
            self._free,
            self._wroom,
            self._istate,
            self._fstate,
            self._counts,
        )
        return self.stats

    @property
    def stats(self) -> JoinQueueStats:
        """Statistics of the customers counted so far."""
        k = self._counts
        return JoinQueueStats(
            arrivals=int(k[C_ARRIVALS]),
            admitted=int(k[C_ADMITTED]),
            blocked=int(k[C_BLOCKED]),
            abandoned=int(k[C_ABANDONED]),
            waited=int(k[C_WAITED]),
            wait_sum=float(self._fstate[F_WAIT_SUM]),
        )
