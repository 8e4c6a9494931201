"""Version of the training-execution distribution (all distributions move in lockstep)."""

__version__ = "0.1.0"
