"""Signals of campaigns, for the layers above them (notifications).

Each is sent inside the transaction that made the change, so a receiver that
writes rows (the notifications outbox) commits or rolls back with it.
"""

import django.dispatch

# The product paused a running campaign on its own decision (an error from Meta,
# an unusable template, a stopped number, a budget); not a person's pause.
# kwargs: ``campaign``, ``reason`` (what the campaign's pause_reason says), ``by``
# ("product").
campaign_paused = django.dispatch.Signal()

# A running campaign completed: nothing was left to send. kwargs: ``campaign``.
campaign_completed = django.dispatch.Signal()

# A scheduled campaign was not started at its time because its pre-flight failed
# (it is failed instead). kwargs: ``campaign``, ``problems`` (list of sentences).
campaign_preflight_failed = django.dispatch.Signal()

# A scheduled campaign's time passed without it being started and it will not be.
# kwargs: ``campaign``.
campaign_expired = django.dispatch.Signal()

# A contact import into a campaign ended, done or failed. kwargs: ``campaign``,
# ``result`` (the ImportJob, with its counts, status and error).
import_finished = django.dispatch.Signal()
