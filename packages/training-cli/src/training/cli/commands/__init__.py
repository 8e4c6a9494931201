"""The built-in commands of `training`: each module has a `register(subparsers)`."""

from training.cli.commands import demo, evaluate, export, final, lineage, predict, report, serve, splits, train

BUILTIN = tuple(
    module.register for module in (train, evaluate, predict, splits, final, lineage, export, report, serve, demo)
)
