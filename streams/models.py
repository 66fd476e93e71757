"""What the bus records in the database: envelopes whose effect is done, for exactly-once effects."""

from __future__ import annotations

from django.db import models


class ProcessedEnvelope(models.Model):
    """Written in the same transaction as a handler's effect: a redelivery finds it and skips."""

    group = models.CharField(max_length=64)
    request_id = models.CharField(max_length=128)
    stream = models.CharField(max_length=64)
    message_id = models.CharField(max_length=32)
    processed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "request_id"], name="processed_once_per_group")]

    def __str__(self) -> str:
        return f"{self.group}:{self.request_id}"
