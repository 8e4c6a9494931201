"""The built-in commands of `training`: each module has a `register(subparsers)`."""

from training.cli.commands import demo, evaluate, final, lineage, predict, report, serve, splits, train

BUILTIN = (
    train.register,
    evaluate.register,
    predict.register,
    splits.register,
    final.register,
    lineage.register,
    report.register,
    serve.register,
    demo.register,
)
