"""What every trial and refit process starts with, imported once by their forkserver: torch, transformers, the
trainer and the objective (seconds of imports).

CPython's forkserver ignores Ctrl-C only once its preloading is done: a terminal's Ctrl-C during these imports (the
first seconds of a sweep) ended it with a traceback of the import on the user's screen. They run with Ctrl-C ignored;
the handler is put back after, as the forkserver's processes inherit it (there, Ctrl-C stops a trial).
"""

import signal

_previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
try:
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import training.core.trainer
    import training.hpo.objective  # noqa: F401
finally:
    signal.signal(signal.SIGINT, _previous)
