"""The `training` command line; other distributions add commands through the `training.cli.commands` entry points."""

from training.cli._version import __version__

__all__ = ["__version__"]
