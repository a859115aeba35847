"""Admission: what the room's control plane says to a join attempt (``docs/policies.md``).

Every policy is a small class with two methods:

- ``admit(t, live, in_flight, patience_left)`` decides the attempt made at time ``t``, knowing the
  listeners connected at ``t`` (``live``), the attempts placed on a node whose join is still
  pending (``in_flight``) and how long the person will still wait (``patience_left``, their
  deadline minus ``t``). It answers ``ADMIT`` (go on to placement now), ``Hold(release_s)`` (go on
  to placement at ``release_s``: the waiting room's hold music) or ``Reject(reason, fail_s,
  hint_s)`` (the attempt failed at ``fail_s`` with reason ``reason``; ``hint_s`` is the
  retry-after hint, 0 for none);
- ``observe(t, delay_s)``: a join queue measured the queueing delay ``delay_s`` of an attempt
  admitted at ``t`` (only the adaptive policies care).

Attempts reach a policy in time order, so each keeps its state as of the last attempt it saw. The
classes restate the table of ``docs/policies.md`` one to one: ``AdmitAll`` (``none``),
``TokenBucket``, ``ConcurrencyCap``, ``WaitingRoom``, ``Aimd`` and ``Credit``; ``admission_for``
builds the one a config names.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Protocol

from sim.policies import AdmissionConfig
from sim.policies import admission as cfgs


@dataclass(frozen=True)
class Admit:
    """Go on to placement now."""


@dataclass(frozen=True)
class Hold:
    """Held in the waiting room: go on to placement at ``release_s``."""

    release_s: float


@dataclass(frozen=True)
class Reject:
    """The attempt failed at ``fail_s``, for ``reason``, with a retry-after hint (0 = none)."""

    reason: str
    fail_s: float
    hint_s: float = 0.0


ADMIT = Admit()
Verdict = Admit | Hold | Reject


class AdmissionPolicy(Protocol):
    """The interface every admission policy has."""

    def admit(self, t: float, live: int, in_flight: int, patience_left: float) -> Verdict: ...

    def observe(self, t: float, delay_s: float) -> None: ...


class AdmitAll:
    """``none``: every attempt goes on to placement."""

    def admit(self, t: float, live: int, in_flight: int, patience_left: float) -> Verdict:
        return ADMIT

    def observe(self, t: float, delay_s: float) -> None:
        pass


class Bucket:
    """Tokens that accrue continuously at a rate up to a burst, full at t = 0; one per attempt."""

    def __init__(self, burst: float) -> None:
        self.tokens = burst
        self.last_s = 0.0

    def accrue(self, t: float, rate_per_s: float, burst: float) -> None:
        """Add the tokens of ``[last, t]`` at ``rate_per_s``, keeping at most ``burst``."""
        self.tokens = min(burst, self.tokens + rate_per_s * (t - self.last_s))
        self.last_s = t

    def take(self, t: float, rate_per_s: float, burst: float) -> bool:
        """Refill up to ``t``, then take one whole token if there is one."""
        self.accrue(t, rate_per_s, burst)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class TokenBucket:
    """``token_bucket``: one global bucket of ``burst`` tokens refilled at ``rate_per_s``."""

    def __init__(self, cfg: cfgs.TokenBucket) -> None:
        self.rate_per_s = cfg.rate_per_s
        self.burst = cfg.burst
        self.bucket = Bucket(cfg.burst)

    def admit(self, t: float, live: int, in_flight: int, patience_left: float) -> Verdict:
        if self.bucket.take(t, self.rate_per_s, self.burst):
            return ADMIT
        return Reject("bucket", t)

    def observe(self, t: float, delay_s: float) -> None:
        pass


class ConcurrencyCap:
    """``concurrency_cap``: refuse while ``max_listeners`` are live or joins are in flight."""

    def __init__(self, cfg: cfgs.ConcurrencyCap) -> None:
        none = math.inf  # null in the config: no limit
        self.max_listeners = none if cfg.max_listeners is None else cfg.max_listeners
        self.max_in_flight = none if cfg.max_joins_in_flight is None else cfg.max_joins_in_flight
        self.hint_s = cfg.retry_after_s

    def admit(self, t: float, live: int, in_flight: int, patience_left: float) -> Verdict:
        if live >= self.max_listeners or in_flight >= self.max_in_flight:
            return Reject("cap", t, self.hint_s)
        return ADMIT

    def observe(self, t: float, delay_s: float) -> None:
        pass


class WaitingRoom:
    """``waiting_room``: a FIFO hold queue with one release "server" of service ``1/release_per_s``.

    ``next_release`` is when the release server is next free. People held at ``t`` are those
    whose exit (their release, or the moment they give up) lies after ``t``: a heap of exits.
    """

    def __init__(self, cfg: cfgs.WaitingRoom) -> None:
        self.gap_s = 1.0 / cfg.release_per_s
        self.max_wait_s = cfg.max_wait_s
        self.capacity = cfg.capacity
        self.hint_s = cfg.retry_after_s
        self.next_release = 0.0
        self.exits: list[float] = []

    def held(self, t: float) -> int:
        """People in the hold queue at ``t`` (held, or waiting to give up)."""
        while self.exits and self.exits[0] <= t:
            heapq.heappop(self.exits)
        return len(self.exits)

    def admit(self, t: float, live: int, in_flight: int, patience_left: float) -> Verdict:
        held = self.held(t)
        r = max(t, self.next_release)
        if r == t:
            self.next_release = r + self.gap_s
            return ADMIT
        if held >= self.capacity:
            return Reject("hold_full", t, self.hint_s)
        wait = min(self.max_wait_s, patience_left)
        if r - t > wait:  # they would not wait that long: they leave without using a slot
            heapq.heappush(self.exits, t + wait)
            return Reject("hold_timeout", t + wait, self.hint_s)
        heapq.heappush(self.exits, r)
        self.next_release = r + self.gap_s
        return Hold(r)

    def observe(self, t: float, delay_s: float) -> None:
        pass


class Windows:
    """Fixed windows ``[w·window_s, (w+1)·window_s)`` and the delays observed in the current one."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.current = 0  # the index w of the window the clock is in
        self.total_s = 0.0
        self.n = 0

    def passed(self, t: float) -> bool:
        """The clock at ``t`` has passed the end of the current window."""
        return math.floor(t / self.window_s) > self.current

    def end_s(self) -> float:
        return (self.current + 1) * self.window_s

    def close(self) -> float | None:
        """Close the current window; its mean observed delay (``None`` if nothing was observed)."""
        mean = self.total_s / self.n if self.n else None
        self.current += 1
        self.total_s = 0.0
        self.n = 0
        return mean

    def add(self, delay_s: float) -> None:
        self.total_s += delay_s
        self.n += 1


class Aimd:
    """``aimd`` (DAGOR-style): a token bucket whose rate ``q`` adapts once per window.

    The bucket holds at most ``max(1, q·burst_s)`` tokens. When the clock passes a window's end the
    tokens accrue up to that end at the old rate; then a window whose mean delay exceeded the
    target cuts ``q`` by ``decrease_factor``, any other (also an empty one) raises it by
    ``increase_per_s``, within ``[min_rate_per_s, max_rate_per_s]``.
    """

    def __init__(self, cfg: cfgs.Aimd) -> None:
        self.cfg = cfg
        self.rate = cfg.initial_rate_per_s
        self.bucket = Bucket(self.burst())
        self.windows = Windows(cfg.window_s)

    def burst(self) -> float:
        return max(1.0, self.rate * self.cfg.burst_s)

    def _catch_up(self, t: float) -> None:
        """Close every window that ended by ``t``, one rate step each."""
        c = self.cfg
        while self.windows.passed(t):
            self.bucket.accrue(self.windows.end_s(), self.rate, self.burst())
            mean = self.windows.close()
            if mean is not None and mean > c.target_delay_s:
                self.rate = max(c.min_rate_per_s, self.rate * c.decrease_factor)
            else:
                self.rate = min(c.max_rate_per_s, self.rate + c.increase_per_s)
            self.bucket.tokens = min(self.bucket.tokens, self.burst())

    def admit(self, t: float, live: int, in_flight: int, patience_left: float) -> Verdict:
        self._catch_up(t)
        if self.bucket.take(t, self.rate, self.burst()):
            return ADMIT
        return Reject("shed", t, self.cfg.retry_after_s)

    def observe(self, t: float, delay_s: float) -> None:
        self._catch_up(t)
        self.windows.add(delay_s)


class Credit:
    """``credit`` (Breakwater-style): admit while ``in_flight < floor(credits)``.

    At each window's end, with ``d`` its mean observed delay (0 when nothing was observed): below
    the target the credits grow by ``additive_credits``, else they shrink to
    ``credits · max(1 − beta·(d − target)/d, 0.5)``, within ``[min_credits, max_credits]``.
    """

    def __init__(self, cfg: cfgs.Credit) -> None:
        self.cfg = cfg
        self.credits = cfg.initial_credits
        self.windows = Windows(cfg.window_s)

    def _catch_up(self, t: float) -> None:
        c = self.cfg
        while self.windows.passed(t):
            mean = self.windows.close()
            d = 0.0 if mean is None else mean
            if d < c.target_delay_s:
                self.credits = min(c.max_credits, self.credits + c.additive_credits)
            else:
                cut = max(1.0 - c.beta * (d - c.target_delay_s) / d, 0.5)
                self.credits = max(c.min_credits, self.credits * cut)

    def admit(self, t: float, live: int, in_flight: int, patience_left: float) -> Verdict:
        self._catch_up(t)
        if in_flight < math.floor(self.credits):
            return ADMIT
        return Reject("no_credit", t, self.cfg.retry_after_s)

    def observe(self, t: float, delay_s: float) -> None:
        self._catch_up(t)
        self.windows.add(delay_s)


def admission_for(cfg: AdmissionConfig) -> AdmissionPolicy:
    """The policy ``cfg`` configures (``admission.policy``)."""
    if isinstance(cfg, cfgs.TokenBucket):
        return TokenBucket(cfg)
    if isinstance(cfg, cfgs.ConcurrencyCap):
        return ConcurrencyCap(cfg)
    if isinstance(cfg, cfgs.WaitingRoom):
        return WaitingRoom(cfg)
    if isinstance(cfg, cfgs.Aimd):
        return Aimd(cfg)
    if isinstance(cfg, cfgs.Credit):
        return Credit(cfg)
    if isinstance(cfg, cfgs.NoAdmission):
        return AdmitAll()
    raise ValueError(f"admission.policy = {cfg.policy!r}: no reference policy of that name")
