"""The transactional outbox: a command and the state it acts on are committed together, then published.

``outbox_put`` writes the command as a row in the caller's transaction. Once that commits, one
attempt is made to publish it at once (the usual path: the command reaches its consumer as fast as
before); whatever the bus did not take is published by the relay (``outbox_relay``, run by the
listeners every ``relay_seconds``), oldest first, and marked sent. So a Redis outage at any moment
delays commands and loses none, and the request that wrote one never waits for Redis to come back.

Delivery is at least once: the relay that published an entry may die before marking it. Each
envelope carries the entry's ``request_id``; the gateway handles a request id once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from streams.bus import BusError, envelope, publish
from streams.models import OutboxEntry

logger = logging.getLogger(__name__)


def outbox_put(stream: str, *, type: str, payload: Mapping[str, Any], producer: str | None = None) -> OutboxEntry:
    """The command, in the caller's transaction; published once it commits (now, or by the relay)."""
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_put belongs in the transaction that writes the state it acts on")
    checked = envelope(type=type, payload=payload, producer=producer)  # refused here, not at the relay
    entry = OutboxEntry.objects.create(stream=stream, type=checked.type, payload=checked.payload,
                                       request_id=f"outbox-{os.urandom(12).hex()}")  # fmt: skip
    transaction.on_commit(lambda: outbox_send(entry_ids=[entry.pk]))
    return entry


def _publish(entry: OutboxEntry, *, fast: bool) -> bool:
    try:
        publish(entry.stream, type=entry.type, payload=entry.payload, request_id=entry.request_id, fast=fast)
    except BusError as exc:
        OutboxEntry.objects.filter(pk=entry.pk).update(attempts=entry.attempts + 1, last_error=str(exc)[:1000])
        logger.warning("outbox entry %s (%s) waits for the bus: %s", entry.pk, entry.type, exc)
        return False
    return True


def outbox_send(*, entry_ids: list[int] | None = None, limit: int = 200) -> int:
    """Publish unsent entries (these, or the oldest ``limit``) in order, until the bus refuses one.

    The entries just committed by a request (``entry_ids``) go through the short-timeout client that
    skips a Redis known to be away: the request answers at once, and the relay sends them later.

    Each entry is locked while it is published (PostgreSQL; another relay skips it), and marked sent
    in the same transaction. Returns how many were sent. Never raises for the bus or the database:
    what is not sent now is sent later.
    """
    sent = 0
    try:
        with transaction.atomic():
            entries = OutboxEntry.objects.select_for_update(skip_locked=True).filter(sent_at__isnull=True)
            if entry_ids is not None:
                entries = entries.filter(pk__in=entry_ids)
            for entry in entries.order_by("id")[:limit]:
                if not _publish(entry, fast=entry_ids is not None):
                    break
                OutboxEntry.objects.filter(pk=entry.pk).update(sent_at=timezone.now(), attempts=entry.attempts + 1)
                sent += 1
    except DatabaseError as exc:
        # The bus may have taken an entry whose mark was rolled back: it is sent again (at least once).
        logger.warning("outbox: %d sent, then the database failed (%s); the relay tries again", sent, exc)
    return sent


def outbox_relay() -> int:
    """One round of the relay: everything unsent, in batches, until none is left or the bus refuses."""
    total = 0
    while True:
        sent = outbox_send()
        total += sent
        if sent < 200:
            return total


def outbox_pending() -> dict[str, Any]:
    """How many entries wait, and since when (the streams API and health show it)."""
    waiting = OutboxEntry.objects.filter(sent_at__isnull=True)
    oldest = waiting.order_by("id").values_list("created_at", flat=True).first()
    return {"waiting": waiting.count(), "oldest": oldest}


def outbox_prune() -> int:
    """Forget sent entries older than the retention (they are in the audit log and the stream)."""
    cutoff = timezone.now() - timedelta(seconds=settings.STREAMS["outbox_retention_seconds"])
    deleted, _ = OutboxEntry.objects.filter(sent_at__lt=cutoff).delete()
    return deleted
