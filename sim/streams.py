"""Named random streams from one seed.

Each component draws from its own ``numpy.random.Generator``, derived from the run's seed and the
stream's name (``SeedSequence([seed, crc32(name)])``). Adding a stream never changes the others, and
the numbers depend on the seed and the name only: not on the worker, the launcher or the order in
which streams are created.
"""

from __future__ import annotations

import zlib

import numpy as np

NAMES = ("arrivals", "placement", "service", "retry", "session")


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator of stream ``name`` for ``seed``."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))
    )


def streams(seed: int, names: tuple[str, ...] = NAMES) -> dict[str, np.random.Generator]:
    return {name: stream(seed, name) for name in names}
