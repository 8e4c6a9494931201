"""Legacy top-level `training` names (deprecated); shipped only by training-compat.

pkgutil-style: it extends `__path__` so `training.core`, `training.hpo`, ... from the other
distributions stay importable, and removing training-compat leaves the PEP 420 namespace intact.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
