"""spacesim: a discrete-event capacity-planning simulator for live-audio rooms hit by surges."""

__version__ = "0.1.0"
