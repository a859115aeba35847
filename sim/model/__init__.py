"""Model components: the surge source, the edge fleet, the join pipeline and the metrics.

Components hold state and advance it through numba kernels in per-tick batches; the engine
(``sim.engine``) orchestrates them as SimPy processes. Nothing here knows Hydra, HDF5 or plotting.
"""
