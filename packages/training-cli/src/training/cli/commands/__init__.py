"""The built-in commands of `training`: each module has a `register(subparsers)`."""

from training.cli.commands import demo, evaluate, export, final, lineage, predict, report, serve, splits, train

BUILTIN = (
    train.register,
    evaluate.register,
    predict.register,
    splits.register,
    final.register,
    lineage.register,
    export.register,
    report.register,
    serve.register,
    demo.register,
)
