"""Version of the training-hpo distribution (all distributions move in lockstep)."""

__version__ = "0.1.0"
