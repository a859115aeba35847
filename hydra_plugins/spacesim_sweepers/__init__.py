"""spacesim's Hydra sweepers (``hydra/sweeper=design``, ``threshold``, ``calibrate``).

Hydra instantiates a sweeper only from a class defined under the ``hydra_plugins`` namespace
package (it registers each plugin under ``class.__module__``), so the classes are declared
here; everything they do is in ``sim.sweep`` and ``sim.calibration``. Their configs are
``conf/hydra/sweeper/``.
"""

from sim import calibration, sweep


class DesignSweeper(sweep.DesignSweeper):
    """Grids, Sobol and Latin-hypercube designs, replications (``sim.sweep.DesignSweeper``)."""


class ThresholdSweeper(sweep.ThresholdSweeper):
    """The adaptive failure-threshold search (``sim.sweep.ThresholdSweeper``)."""


class CalibrationSweeper(calibration.CalibrationSweeper):
    """The fit of a replay to its event's data points (``sim.calibration``)."""


__all__ = ["CalibrationSweeper", "DesignSweeper", "ThresholdSweeper"]
