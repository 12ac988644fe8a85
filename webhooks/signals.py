"""Signals of the webhooks layer, for the layers above it (conversations)."""

import django.dispatch

# Sent by webhooks.inbound.store_inbound inside its transaction, with the
# InboundMessage rows it created (kwargs: ``messages``), duplicates left out.
inbound_stored = django.dispatch.Signal()

# Sent by webhooks.statuses for the statuses that matched no campaign recipient,
# before they would be parked (kwargs: ``updates``: StatusUpdate rows, unsaved
# outcome). A receiver returns the set of StatusUpdate.message_key values it
# applied or recognised (its messages, e.g. inbox replies); those are not parked.
statuses_unmatched = django.dispatch.Signal()
