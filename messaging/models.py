"""Sending state that outlives Redis: the history of the shared send rate."""

from django.db import models


class RateAdjustment(models.Model):
    """One change of the shared adaptive send rate (msg/s), and why it moved."""

    at = models.DateTimeField(db_index=True)
    old = models.FloatField()
    new = models.FloatField()
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.old:g} -> {self.new:g} msg/s ({self.reason})"
