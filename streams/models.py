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


class OutboxEntry(models.Model):
    """A command written in the same transaction as the state it acts on, published by the relay.

    ``sent_at`` is set once the bus took it; until then the relay tries again, oldest first. The
    ``request_id`` travels in the envelope: a consumer that sees one twice can tell.
    """

    stream = models.CharField(max_length=64)
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    request_id = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="outbox_unsent", condition=models.Q(sent_at__isnull=True)),
            models.Index(fields=["sent_at"], name="outbox_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.stream} {self.type} {self.request_id}"
