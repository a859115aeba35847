"""Ctrl-C at safe points.

A ``KeyboardInterrupt`` raised while a numba kernel's dispatcher is in C code can crash the
process (numba issues #2324, #5551: the exception is set where nothing handles it). So while a
run simulates, ``deferred()`` replaces Python's SIGINT handler with one that only notes the
signal; the engines call their progress callback at the next tick boundary when one is pending,
and ``check()`` there raises the ``KeyboardInterrupt`` in plain Python code, where
``sim.runner.run_job`` turns it into a record with ``status = "interrupted"``.

A second Ctrl-C before that safe point raises at once (the way out of a tick that never ends;
the run then may leave no record). A process that ignores SIGINT (``SIG_IGN``), or code off the
main thread, keeps its handler: signals reach only the main thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

_pending = False


def pending() -> bool:
    """A Ctrl-C arrived and has not been raised yet."""
    return _pending


def check() -> None:
    """Raise the pending Ctrl-C as ``KeyboardInterrupt`` (a safe point: plain Python code)."""
    global _pending
    if _pending:
        _pending = False
        raise KeyboardInterrupt


def _note(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _pending:  # the second Ctrl-C: at once
        _pending = False
        raise KeyboardInterrupt
    _pending = True
    log.warning("Ctrl-C: stopping at the end of this tick (press again to stop at once)")


@contextmanager
def deferred() -> Iterator[None]:
    """SIGINT only noted (see the module docstring) inside the block; the old handler after."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGINT)
    if old in (signal.SIG_IGN, None):
        yield
        return
    _pending = False
    signal.signal(signal.SIGINT, _note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    check()  # a Ctrl-C after the last safe point still stops what comes next
