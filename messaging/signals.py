"""Signals of the sending engine, for the layers above it (webhooks, later conversations)."""

import django.dispatch

# Sent by a lane link after it recorded the results of the batch it claimed
# (kwargs: ``number_id``). Receipts that raced those sends were parked by the
# webhooks; a receiver applies them now rather than at the next periodic retry.
sends_recorded = django.dispatch.Signal()
