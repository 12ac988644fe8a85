"""WhatsApp numbers: the sending numbers of a workspace and what Meta reports about them.

The product's layout names this app ``numbers``, which is also a standard
library module (the numeric ABCs that ``decimal`` and ``fractions`` register
with). With the project root first on ``sys.path`` this package is what
``import numbers`` finds, so it also *is* that module: it re-exports the
standard library's own ABC classes (``__module__ == "numbers"``, so they pickle
by the same name everywhere). If the standard module was imported before us,
``config/__init__.py`` leaves it under ``STDLIB_KEY`` and its classes are the
ones re-exported, since ``Decimal`` and ``Fraction`` were registered with them.
"""

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

# The sys.modules key of the standard library's module once this package owns
# the name ``numbers``; config/__init__.py uses the same key.
STDLIB_KEY = "_stdlib_numbers"

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _is_project_root(entry: str) -> bool:
    try:
        return Path(entry or os.curdir).resolve() == _PROJECT_ROOT
    except OSError:  # '' with the working directory gone: the path finder skips it too
        return False


def _stdlib_numbers() -> ModuleType:
    """The standard library's ``numbers``: the copy already loaded if any, else loaded now.

    Raises ImportError if no plain ``numbers`` module is on sys.path outside the project root.
    """
    loaded = sys.modules.get(STDLIB_KEY)
    if loaded is not None:
        return loaded
    path = [entry for entry in sys.path if isinstance(entry, str) and not _is_project_root(entry)]
    spec = importlib.machinery.PathFinder.find_spec("numbers", path)
    if spec is None or spec.loader is None or spec.submodule_search_locations is not None:
        raise ImportError("no standard-library numbers module on sys.path", name="numbers")
    module = importlib.util.module_from_spec(spec)
    # As a normal import would, the module is sys.modules["numbers"] while its
    # code runs, so nothing it imports can meet this half-initialised package;
    # then the name is ours again.
    ours = sys.modules.get("numbers")
    sys.modules["numbers"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        if ours is None:
            sys.modules.pop("numbers", None)
        else:
            sys.modules["numbers"] = ours
    sys.modules[STDLIB_KEY] = module
    return module


_stdlib = _stdlib_numbers()
Number = _stdlib.Number
Complex = _stdlib.Complex
Real = _stdlib.Real
Rational = _stdlib.Rational
Integral = _stdlib.Integral
__all__ = ["Complex", "Integral", "Number", "Rational", "Real"]
