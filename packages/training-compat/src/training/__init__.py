"""Legacy top-level `training` names (deprecated, resolved lazily with a warning); shipped only by training-compat.

pkgutil-style: it extends `__path__` first, so the other distributions' `training.*` stay importable, and removing
training-compat leaves the PEP 420 namespace intact.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from training_compat.shim import legacy_names as _legacy_names

__getattr__, __dir__, __all__ = _legacy_names(__name__, globals())
