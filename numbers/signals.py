"""Signals of numbers, for the layers above them (notifications).

``number_changed`` and ``number_token_invalid`` are sent from ``post_save`` of a
Number whose quality rating, messaging-limit tier or status differs from what
the row held just before the save (read by ``pre_save``), so every path that
saves a number (connection test, Meta's account webhooks, the engine stopping a
number) announces it, inside its transaction. A ``QuerySet.update()`` of those
fields announces nothing: change them through ``save()``.
"""

from __future__ import annotations

import django.dispatch

# kwargs: ``number``, ``changes`` ({field: (old, new)} for the watched fields that changed).
number_changed = django.dispatch.Signal()

# The number's token no longer works (expired or revoked: its status became
# token_expired). kwargs: ``number``, ``error`` (the number's last_error, a sentence).
number_token_invalid = django.dispatch.Signal()

WATCHED_FIELDS = ("quality_rating", "messaging_limit_tier", "status")
_BEFORE = "_watched_before_save"


def _watched(update_fields) -> list[str]:
    if update_fields is None:
        return list(WATCHED_FIELDS)
    return [name for name in WATCHED_FIELDS if name in update_fields]


def remember_before(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """pre_save: the watched values as stored now (one query, only when a save writes them).

    Read from the row, not from the instance as loaded: a ``refresh_from_db`` or a
    concurrent writer since then must not look like this save's change."""
    instance.__dict__.pop(_BEFORE, None)
    fields = _watched(update_fields)
    if raw or instance.pk is None or not fields:
        return
    row = sender._base_manager.filter(pk=instance.pk).values(*fields).first()
    if row is not None:
        instance.__dict__[_BEFORE] = row


def announce_changes(sender, instance, created, raw=False, **kwargs) -> None:
    """post_save: send number_changed (and number_token_invalid) for what this save changed."""
    before = instance.__dict__.pop(_BEFORE, None)
    if created or raw or not before:
        return
    changes = {
        name: (old, getattr(instance, name))
        for name, old in before.items()
        if old != getattr(instance, name)
    }
    if not changes:
        return
    number_changed.send(sender=sender, number=instance, changes=changes)
    status = changes.get("status")
    if status is not None and status[1] == "token_expired":
        number_token_invalid.send(sender=sender, number=instance, error=instance.last_error)
