"""After-commit work: the one idiom for anything that must only see committed rows."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db import transaction


def after_commit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """Runs ``fn(*args, **kwargs)`` once the current transaction commits (at once outside one).

    For queueing Celery work and kicking lanes: a worker that starts before the
    commit would not see the rows it was queued for. Pass ids, never objects.
    """
    transaction.on_commit(functools.partial(fn, *args, **kwargs))
