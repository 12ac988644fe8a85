"""Keeps Slack hook URLs (each one a credential) out of urllib3's debug log.

urllib3 logs every request's path at DEBUG; a Slack incoming webhook's path is
``/services/T.../B.../<secret>``. The filter rewrites the record's arguments
before any handler formats them.
"""

from __future__ import annotations

import logging
import re

_HOOK_PATH = re.compile(r"/services/[^/\s]+/[^/\s]+/[^\s\"?#]+")
REDACTED = "/services/********"


class SlackHookRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _HOOK_PATH.sub(REDACTED, arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _HOOK_PATH.sub(REDACTED, record.msg)
        return True


def install() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, SlackHookRedactor) for f in logger.filters):
        logger.addFilter(SlackHookRedactor())
