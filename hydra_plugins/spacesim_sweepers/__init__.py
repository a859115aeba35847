"""spacesim's Hydra sweepers (``hydra/sweeper=design``, ``hydra/sweeper=threshold``).

Hydra instantiates a sweeper only from a class defined under the ``hydra_plugins`` namespace
package (it registers each plugin under ``class.__module__``), so the two classes are declared
here; everything they do is in ``sim.sweep``. Their configs are ``conf/hydra/sweeper/``.
"""

from sim import sweep


class DesignSweeper(sweep.DesignSweeper):
    """Grids, Sobol and Latin-hypercube designs, replications (``sim.sweep.DesignSweeper``)."""


class ThresholdSweeper(sweep.ThresholdSweeper):
    """The adaptive failure-threshold search (``sim.sweep.ThresholdSweeper``)."""


__all__ = ["DesignSweeper", "ThresholdSweeper"]
