"""Management-side handlers of ``SYSTEM_EVENTS`` and ``AUDIT_EVENTS``; what concerns users goes on to their sockets.

Each app keeps the handlers of its own streams in its ``listeners.py`` (``bots``: bot status,
``analytics``: trade updates); ``run_listeners`` gathers them with ``streams.worker.discover``.
On ``SYSTEM_EVENTS`` an envelope's type picks its handler: ``trade_notification`` (analytics) and
``job_progress`` (jobs) are relayed to their owner's sockets, every other type is logged.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings

from realtime import broadcast
from realtime.protocol import Event
from streams.bus import Envelope
from streams.catalog import AUDIT_EVENTS, SYSTEM_EVENTS
from streams.worker import HandlerRegistry

logger = logging.getLogger(__name__)
registry = HandlerRegistry()
TIME_LIMIT = settings.STREAMS["listener_time_limit"]


def _at(timestamp: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(timestamp)).timestamp()
    except ValueError:
        return None


def audit_event_data(payload: dict[str, Any]) -> dict[str, Any]:
    """What a socket shows of an audit row: who did what to which resource, never its details."""
    kind, _, key = str(payload.get("resource") or "").partition(":")
    return {
        "id": payload.get("id"), "action": payload.get("action"), "resource_type": kind, "resource_id": key,
        "status": payload.get("status"), "user": payload.get("user"), "ip_address": payload.get("ip_address"),
        "at": _at(payload.get("timestamp")),
    }  # fmt: skip


@registry.handles(AUDIT_EVENTS, atomic=False)
def handle_audit_entry(envelope: Envelope) -> None:
    # The row is already in the database (it was published after commit): this is only the news of it,
    # to the acting account and the superusers; a row no account acted for (the gateway's) to superusers.
    owner_id = envelope.payload.get("user_id")
    broadcast(Event.AUDIT_EVENT, audit_event_data(envelope.payload), owner_id=owner_id,
              superusers_only=owner_id is None)  # fmt: skip


def _relay(event: Event) -> Any:
    """A handler that sends the envelope's payload to its owner's sockets, without the owner's id."""

    def relay(envelope: Envelope) -> None:
        data = dict(envelope.payload)
        owner_id = data.pop("owner_id", None)
        if owner_id is None:
            logger.warning("%s without an owner_id: not broadcast", envelope.type)
            return
        broadcast(event, data, owner_id=int(owner_id))

    relay.__qualname__ = f"relay_{event}"
    return relay


for _event in (Event.TRADE_NOTIFICATION, Event.JOB_PROGRESS):
    registry.handles(SYSTEM_EVENTS, _event, atomic=False, time_limit=TIME_LIMIT)(_relay(_event))


@registry.handles(SYSTEM_EVENTS, atomic=False)
def handle_system_event(envelope: Envelope) -> None:
    level = logging.WARNING if envelope.type in {"stream_entries_lost"} else logging.INFO
    logger.log(level, "system event %s from %s: %s", envelope.type, envelope.producer, envelope.payload)
