"""WhatsApp numbers: the sending numbers of a workspace and what Meta reports about them.

The product's layout names this app ``numbers``, which is also a standard
library module (the numeric ABCs that ``decimal`` and ``fractions`` register
with). With the project root first on ``sys.path`` this package is what
``import numbers`` finds, so it also *is* that module: it re-exports the
standard library's ABCs. ``config/__init__.py`` keeps an already-imported
standard-library copy (pytest and Celery import ``decimal`` early) so the
classes stay the very ones ``Decimal`` and ``Fraction`` were registered with.
"""

import importlib.util
import sys
import sysconfig
from pathlib import Path


def _stdlib_numbers():
    module = sys.modules.get("_stdlib_numbers")
    if module is None:
        path = Path(sysconfig.get_path("stdlib")) / "numbers.py"
        spec = importlib.util.spec_from_file_location("_stdlib_numbers", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["_stdlib_numbers"] = module
        spec.loader.exec_module(module)
    return module


_stdlib = _stdlib_numbers()
__all__ = list(_stdlib.__all__)
globals().update({name: getattr(_stdlib, name) for name in __all__})
