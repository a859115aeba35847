"""Data shipped with spacesim: the public data points of the replayed events (``events/*.csv``)."""
