"""Project configuration; importing it makes the Celery app the default for shared tasks."""

import sys

# The ``numbers`` app shares its name with a standard-library module. If that
# module was imported before the project root reached sys.path (pytest and
# Celery import ``decimal`` early), keep it where our package looks for it (the
# key is ``numbers.STDLIB_KEY``), so the package re-exports its very classes,
# and drop it from the cache so ``import numbers`` finds the app.
_early = sys.modules.get("numbers")
if _early is not None and not hasattr(_early, "__path__"):
    sys.modules["_stdlib_numbers"] = _early
    del sys.modules["numbers"]

from config.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
