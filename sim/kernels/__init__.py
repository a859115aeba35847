"""numba kernels: the per-request work of spacesim, in batches.

Every kernel is a private ``@njit(cache=True)`` function that takes arrays and scalars with explicit
dtypes; a public wrapper validates its input and allocates its output. Kernels import nothing of the
project but each other and ``hot`` (below), so the engine, the validation command and the tests
share them.

numba's cache checks only the source file of the function it compiled, not the kernels it calls
from other modules: after an edit of ``heap.py`` a cached ``pipeline.step`` would still run the old
heap code. So the cache lives in a directory named after a hash of every kernel source file
(under ``$NUMBA_CACHE_DIR`` when that is set, else ``sim/kernels/__nbcache__``, or
``~/.cache/spacesim/numba`` when the package is not writable): any edit starts a fresh cache, and
the caches of sources unused for a day are removed beyond the three most recent (``prune``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numba


def _cache_dir() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha1(usedforsecurity=False)
    for source in sorted(here.rglob("*.py")):  # the policy packages too (admission/)
        if "__nbcache__" in source.parts:
            continue
        digest.update(str(source.relative_to(here)).encode())
        digest.update(source.read_bytes())
    base = os.environ.get("NUMBA_CACHE_DIR") or (
        str(here / "__nbcache__")
        if os.access(here, os.W_OK)
        else os.path.join(os.path.expanduser("~"), ".cache", "spacesim", "numba")
    )
    current = os.path.join(base, digest.hexdigest()[:16])
    prune(Path(base), current)
    return current


def prune(base: Path, current: str, keep: int = 3, min_age_s: float = 86_400.0) -> list[Path]:
    """Remove the caches of older kernel sources under ``base``; return what was removed.

    Every edit of a kernel starts a fresh cache directory (named by 16 hex digits of the sources'
    hash), so a developer's cache would grow by tens of MB per edit. Kept: ``current``, the
    ``keep`` most recently used others, and any used within ``min_age_s`` (another checkout or
    process may still need it). Only directories named like ours are touched.
    """
    if not base.is_dir():
        return []
    stale = []
    for d in base.iterdir():
        if d.is_dir() and _DIGEST.fullmatch(d.name) and str(d) != current:
            stale.append((d.stat().st_mtime, d))
    stale.sort(reverse=True)
    removed = []
    now = time.time()
    for mtime, d in stale[keep:]:
        if now - mtime > min_age_s:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


_DIGEST = re.compile(r"[0-9a-f]{16}")
numba.config.CACHE_DIR = _cache_dir()  # type: ignore[attr-defined]  # not in numba's stubs


_F = TypeVar("_F", bound=Callable[..., Any])


def hot(fn: _F) -> _F:
    """``@njit(cache=True)`` without numba's reference counting, always inlined by LLVM: for
    helpers called per attempt.

    A compiled helper that takes arrays normally increfs and decrefs each of them on every call
    (about 4 ns per array here, measured), and that stops LLVM from inlining it into the calling
    loop; without reference counting (numba's ``_nrt=False``) a small helper inlines and costs
    nothing. A larger one (``calendar.put``, ``queue.offer``, ``placement.choose``, the
    admission dispatch) still stayed a call: numba passes every array as its seven-word struct,
    so ``put`` took some 50 arguments on the stack per call. ``forceinline=True`` marks the
    helper ``alwaysinline`` for LLVM, and every call site inlines it (the pipeline kernel took
    0.55 of its time after this, paired runs, docs/performance.md). Only for helpers that
    allocate nothing and draw no numbers from a numba ``Generator`` (its methods need the
    runtime); the array streams of ``sim.kernels.rng`` are ``hot`` functions themselves.
    """
    # forceinline: numba's flag for LLVM's alwaysinline; the overloads of numba's stubs lack it
    jit = numba.njit(cache=True, _nrt=False, forceinline=True)  # type: ignore[call-overload]
    return cast(_F, jit(fn))
