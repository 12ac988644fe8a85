"""Signals of the inbox, for the layers above it (automation, notifications)."""

import django.dispatch

# Sent inside the transaction that stored a new inbound Message, once per wamid
# (kwargs: ``message``). Receivers that do slow work queue it after commit.
inbound_created = django.dispatch.Signal()

# Sent by conversation_handover after a bot handed a conversation to people
# (kwargs: ``conversation``, ``reason``).
handed_over = django.dispatch.Signal()
