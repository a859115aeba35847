"""numba kernels: the per-request work of spacesim, in batches.

Every kernel is a private ``@njit(cache=True)`` function that takes arrays and scalars with explicit
dtypes; a public wrapper validates its input and allocates its output. Kernels import nothing of the
project but each other and ``hot`` (below), so the engine, the validation command and the tests
share them.

numba's cache checks only the source file of the function it compiled, not the kernels it calls
from other modules: after an edit of ``heap.py`` a cached ``pipeline.step`` would still run the old
heap code. So the cache lives in a directory named after a hash of every kernel source file
(under ``$NUMBA_CACHE_DIR`` when that is set, else ``sim/kernels/__nbcache__``, or
``~/.cache/spacesim/numba`` when the package is not writable): any edit starts a fresh cache.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numba


def _cache_dir() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha1(usedforsecurity=False)
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    base = os.environ.get("NUMBA_CACHE_DIR") or (
        str(here / "__nbcache__")
        if os.access(here, os.W_OK)
        else os.path.join(os.path.expanduser("~"), ".cache", "spacesim", "numba")
    )
    return os.path.join(base, digest.hexdigest()[:16])


numba.config.CACHE_DIR = _cache_dir()  # type: ignore[attr-defined]  # not in numba's stubs


_F = TypeVar("_F", bound=Callable[..., Any])


def hot(fn: _F) -> _F:
    """``@njit(cache=True)`` without numba's reference counting, for helpers called per attempt.

    A compiled helper that takes arrays normally increfs and decrefs each of them on every call
    (about 4 ns per array here, measured), and that stops LLVM from inlining it into the calling
    loop; without reference counting (numba's ``_nrt=False``) the same helper inlines and costs
    nothing. Only for helpers that allocate nothing and draw no random numbers (numba's
    ``Generator`` methods need the runtime).
    """
    return cast(_F, numba.njit(cache=True, _nrt=False)(fn))  # type: ignore[call-overload]
