"""The client: patience, backoff, retry budget and adaptive throttling (``docs/policies.md``).

A person draws their patience once, at their first attempt; their deadline is ``first +
patience``. After failed attempt ``k`` the backoff gives the wait before attempt ``k + 1`` (or
``None``: the person gives up). Two optional client-wide guards look at sliding windows of
one-second bins of absolute time (``SlidingWindow``):

- the retry budget (``client.retry_budget``): a retry due at ``t`` is sent only if
  ``Q + 1 ≤ retry_budget · R`` (``Q`` retries and ``R`` sent attempts in the window before ``t``);
- the adaptive throttle (``client.throttle_k``): an attempt is rejected locally with probability
  ``max(0, (R − K·A) / (R + 1))`` (``R`` attempts, ``A`` accepted ones in the window before ``t``).

``Client`` puts them together for the listener process; each backoff is a small class with
``wait(k, prev)``. ``Reconnects`` is how a listener dropped by a crash comes back
(``docs/model.md``, *Client*): after ``reconnect_min_s + Exp(reconnect_mean_s)``, as a new first
attempt.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from sim.policies import ClientConfig
from sim.policies import client as cfgs
from sim.reference.draws import Stream

# --------------------------------------------------------------------------- backoffs


class Backoff(Protocol):
    """The wait after failed attempt ``k`` (k = 1, 2, ...); ``prev`` is the person's last wait."""

    def wait(self, k: int, prev: float) -> float | None: ...


class NoRetry:
    """``none``: never retries."""

    def wait(self, k: int, prev: float) -> float | None:
        return None


class Immediate:
    """``immediate``: retry at once."""

    def wait(self, k: int, prev: float) -> float | None:
        return 0.0


class Constant:
    """``constant``: wait ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def wait(self, k: int, prev: float) -> float | None:
        return self.delay_s


class Exponential:
    """``exponential``: wait ``min(cap_s, base_s · 2^(k−1))``, no jitter."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self.base_s = base_s
        self.cap_s = cap_s

    def wait(self, k: int, prev: float) -> float | None:
        return min(self.cap_s, self.base_s * 2.0 ** (k - 1))


class FullJitter:
    """``full_jitter``: wait ``U(0, min(cap_s, base_s · 2^(k−1)))``, one uniform draw."""

    def __init__(self, base_s: float, cap_s: float, rng: Stream) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng

    def wait(self, k: int, prev: float) -> float | None:
        return self.rng.uniform() * min(self.cap_s, self.base_s * 2.0 ** (k - 1))


class DecorrelatedJitter:
    """``decorrelated_jitter``: wait ``min(cap_s, U(base_s, 3·prev))``, one uniform draw."""

    def __init__(self, base_s: float, cap_s: float, rng: Stream) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng

    def wait(self, k: int, prev: float) -> float | None:
        u = self.rng.uniform()
        return min(self.cap_s, self.base_s + u * (3.0 * prev - self.base_s))


def backoff_for(cfg: ClientConfig, rng: Stream) -> Backoff:
    """The backoff ``cfg.retry`` names, drawing from ``rng`` (the ``retry`` stream)."""
    if isinstance(cfg, cfgs.NoRetry):
        return NoRetry()
    if isinstance(cfg, cfgs.ImmediateRetry):
        return Immediate()
    if isinstance(cfg, cfgs.ConstantRetry):
        return Constant(cfg.delay_s)
    if isinstance(cfg, cfgs.FullJitter):
        return FullJitter(cfg.base_s, cfg.cap_s, rng)
    if isinstance(cfg, cfgs.Exponential):
        return Exponential(cfg.base_s, cfg.cap_s)
    if isinstance(cfg, cfgs.DecorrelatedJitter):
        return DecorrelatedJitter(cfg.base_s, cfg.cap_s, rng)
    raise ValueError(f"client.retry = {cfg.retry!r}: no reference backoff of that name")


def first_prev(cfg: ClientConfig) -> float:
    """``prev`` before a person's first wait: ``base_s`` (only decorrelated jitter uses it)."""
    return float(getattr(cfg, "base_s", 0.0))


# --------------------------------------------------------------------------- patience


class Patience:
    """How long a person keeps trying, from their first attempt (``inf`` for ``none``)."""

    def __init__(self, cfg: ClientConfig, rng: Stream) -> None:
        self.kind = cfg.patience
        self.mean_s = cfg.patience_mean_s
        sigma2 = math.log1p(cfg.patience_cv**2)
        self.sigma = math.sqrt(sigma2)
        self.mu = math.log(cfg.patience_mean_s) - sigma2 / 2
        self.rng = rng

    def draw(self) -> float:
        if self.kind == "fixed":
            return self.mean_s
        if self.kind == "exponential":
            return self.rng.exponential(self.mean_s)
        if self.kind == "lognormal":  # Box–Muller, the cosine branch
            u1, u2 = self.rng.uniform(), self.rng.uniform()
            z = math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * u2)
            return math.exp(self.mu + self.sigma * z)
        return math.inf


# --------------------------------------------------------------------------- windows


class SlidingWindow:
    """A count of events over the ``ceil(window_s)`` one-second bins up to the current time's.

    The window before ``t`` is the bins ``floor(t) − W + 1 .. floor(t)``; events are added at the
    current time, which only moves forward.
    """

    def __init__(self, window_s: float) -> None:
        self.bins = math.ceil(window_s)
        self._counts: deque[list[int]] = deque()  # [bin, count], oldest first
        self._total = 0

    def _forget_before(self, t: float) -> None:
        oldest = math.floor(t) - self.bins + 1
        while self._counts and self._counts[0][0] < oldest:
            self._total -= self._counts.popleft()[1]

    def total(self, t: float) -> int:
        """The events in the window before ``t``."""
        self._forget_before(t)
        return self._total

    def add(self, t: float) -> None:
        """Count one event at ``t``."""
        self._forget_before(t)
        b = math.floor(t)
        if self._counts and self._counts[-1][0] == b:
            self._counts[-1][1] += 1
        else:
            self._counts.append([b, 1])
        self._total += 1


class RetryBudget:
    """Retries are sent only while ``Q + 1 ≤ ratio · R`` over the window before their time."""

    def __init__(self, ratio: float, window_s: float) -> None:
        self.ratio = ratio
        self.sent = SlidingWindow(window_s)  # R: first attempts and retries that were sent
        self.retries = SlidingWindow(window_s)  # Q

    def allows_retry(self, t: float) -> bool:
        return self.retries.total(t) + 1 <= self.ratio * self.sent.total(t)

    def record(self, t: float, retry: bool) -> None:
        self.sent.add(t)
        if retry:
            self.retries.add(t)


class Throttle:
    """Client-side adaptive throttling (Google SRE): reject locally with ``(R − K·A) / (R + 1)``."""

    def __init__(self, k: float, window_s: float, rng: Stream) -> None:
        self.k = k
        self.requests = SlidingWindow(window_s)  # R: every attempt, throttled ones included
        self.accepts = SlidingWindow(window_s)  # A: attempts that will join
        self.rng = rng

    def rejects(self, t: float) -> bool:
        """Count the attempt at ``t``; ``True`` if the client drops it locally."""
        r = self.requests.total(t)
        p = max(0.0, (r - self.k * self.accepts.total(t)) / (r + 1))
        self.requests.add(t)
        return self.rng.uniform() < p

    def accepted(self, t: float) -> None:
        self.accepts.add(t)


# --------------------------------------------------------------------------- the client


class Client:
    """What every listener's client does: patience, backoff, budget, throttle, retry-after hints.

    ``rngs`` maps stream names (``retry``, ``patience``, ``client``) to their streams.
    """

    def __init__(self, cfg: ClientConfig, rngs: dict[str, Stream]) -> None:
        self.max_attempts = cfg.max_attempts
        self.honour_retry_after = cfg.honour_retry_after
        self.backoff = backoff_for(cfg, rngs["retry"])
        self.first_prev = first_prev(cfg)
        self.patience = Patience(cfg, rngs["patience"])
        self.budget = (
            None if cfg.retry_budget is None else RetryBudget(cfg.retry_budget, cfg.budget_window_s)
        )
        self.throttle = (
            None
            if cfg.throttle_k is None
            else Throttle(cfg.throttle_k, cfg.throttle_window_s, rngs["client"])
        )

    def wait_after(self, k: int, prev: float, hint_s: float) -> float | None:
        """The wait after failed attempt ``k`` (``None``: out of attempts or no retries)."""
        if k >= self.max_attempts:
            return None
        wait = self.backoff.wait(k, prev)
        if wait is not None and self.honour_retry_after and hint_s > wait:
            wait = hint_s
        return wait


class Reconnects:
    """A dropped listener reconnects with probability ``share`` (one uniform draw when
    ``share < 1``), after ``reconnect_min_s + Exp(reconnect_mean_s)``; draws from ``reconnect``."""

    def __init__(self, cfg: ClientConfig, rng: Stream) -> None:
        self.min_s = cfg.reconnect_min_s
        self.mean_s = cfg.reconnect_mean_s
        self.rng = rng

    def comes_back(self, share: float) -> bool:
        return share >= 1.0 or self.rng.uniform() < share

    def delay(self) -> float:
        return self.min_s + self.rng.exponential(self.mean_s)
