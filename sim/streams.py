"""Named random streams from one seed.

Each component draws from its own stream, derived from the run's seed and the stream's name
(``SeedSequence([seed, crc32(name)])``). Adding a stream never changes the others, and the numbers
depend on the seed and the name only: not on the worker, the launcher or the order in which
streams are created. The kernels carry their streams as rows of one ``sim.kernels.rng`` state
array (``states``, in the order of ``NAMES``, which is ``sim.kernels.pipeline``'s ``R_*``); the
arrival sampler has its own (``arrival_state``).
"""

from __future__ import annotations

import zlib

import numpy as np

from sim.kernels import rng

NAMES = ("placement", "service", "retry", "session", "patience", "client", "reconnect", "attack")
ARRIVALS = "arrivals"
ATTACK_ARRIVALS = "attack arrivals"  # the join flood's bots (numpy streams, outside the kernels)
PRESENCE = "presence"  # connections the saturated presence channel drops
STALL = "stall"  # the stall model's rounding (sim.model.fanout)


def stream(seed: int, name: str) -> np.random.Generator:
    """A numpy generator of stream ``name`` for ``seed`` (for code outside the kernels)."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))
    )


def states(seed: int, names: tuple[str, ...] = NAMES) -> np.ndarray:
    """The kernel streams of ``seed``: one ``sim.kernels.rng`` state row per name."""
    return rng.seeded(seed, names)


def arrival_state(seed: int) -> np.ndarray:
    """The arrival sampler's stream of ``seed`` (one state row)."""
    return rng.seeded(seed, (ARRIVALS,))
