"""The surge source: new listeners arriving as a non-homogeneous Poisson process.

The intensity λ(t) comes from the scenario's data points (linear or exponential segments), scaled
by ``s`` when the scenario sets ``expected_arrivals``. Arrivals are drawn by inversion of Λ(t) in
per-tick batches (``sim.kernels.arrivals.NHPPStream``), so the arrival times do not depend on the
tick length.
"""

from __future__ import annotations

import numpy as np

from sim.config import ScenarioConfig
from sim.kernels.arrivals import NHPPStream, Profile

_NONE = np.empty(0, dtype=np.float64)


def profile_of(cfg: ScenarioConfig) -> Profile:
    """The scenario's intensity profile, scaled so that Λ(end) is ``expected_arrivals`` if set."""
    return cfg.shape().scaled(cfg.scale())


class SurgeSource:
    """Draws the first attempts of new listeners, one tick at a time."""

    def __init__(self, cfg: ScenarioConfig, rng: np.random.Generator) -> None:
        self.profile = profile_of(cfg)
        self.end_s = float(self.profile.t[-1])
        self.expected = float(self.profile.total())
        self._stream = NHPPStream(self.profile, rng)

    def batch(self, t_end: float) -> np.ndarray:
        """The arrival times in ``[previous t_end, t_end)``, sorted."""
        if self._stream.quiet_until(t_end):  # none in this tick
            return _NONE
        return self._stream.next_batch(t_end)

    @property
    def start_s(self) -> float:
        """When the surge begins: the first data point at half the peak rate or more."""
        rate = np.asarray(self.profile.rate)
        return float(np.asarray(self.profile.t)[np.argmax(rate >= 0.5 * rate.max())])

    def exhausted(self, t: float) -> bool:
        """No arrival can come at or after ``t``."""
        return t >= self.end_s
