"""Signals of template sync, for the layers above it (campaigns pause on an unusable template)."""

import django.dispatch

# Sent by ``template_status_record`` whenever a template's status changes, from a
# sync or from Meta's webhook, inside the transaction that records the change
# (kwargs: ``template``, ``old``, ``new``, ``reason``, ``source``).
template_status_changed = django.dispatch.Signal()

# Sent when Meta changes a template's category (the template_category_update webhook,
# or a sync that finds another category), inside the transaction that records it
# (kwargs: ``template``, ``old``, ``new``).
template_category_changed = django.dispatch.Signal()
