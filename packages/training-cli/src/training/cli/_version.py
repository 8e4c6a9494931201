"""Version of the training-cli distribution (all distributions move in lockstep)."""

__version__ = "0.1.0"
