"""The realtime app's services: WebSocket tickets, and the periodic fleet-wide events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from audit import events
from audit.services import Actor
from multibot import health
from multibot.errors import UnavailableError
from realtime import auth
from realtime.broadcast import broadcast
from realtime.protocol import Event
from streams.health import LAG_DEGRADED, bus_health


@dataclass(frozen=True)
class Ticket:
    ticket: str
    expires_in: int


def ws_ticket_issue(*, actor: Actor) -> Ticket:
    """A single-use ticket that opens one socket as the actor within ``REALTIME["ticket_seconds"]``."""
    expires_in = int(settings.REALTIME["ticket_seconds"])
    with transaction.atomic():
        try:
            ticket = auth.ticket_store(user=actor.user)
        except redis.RedisError as exc:
            raise UnavailableError("Live updates are unavailable right now (Redis is unreachable).") from exc
        events.ws_ticket_issued_event(actor=actor, expires_in=expires_in)
    return Ticket(ticket=ticket, expires_in=expires_in)


# -- periodic, fleet-wide: every authenticated socket ---------------------------------------------
def system_metrics_data() -> dict[str, float]:
    """This host's CPU, memory and disk use (percent), as the monitoring status reports them."""
    figures = health.system_metrics()
    return {
        "cpu_usage": figures["cpu"]["usage_percent"],
        "memory_usage": figures["memory"]["usage_percent"],
        "disk_usage": figures["disk"]["usage_percent"],
    }


def _stream_status(figures: dict[str, Any]) -> str:
    # As the bus's verdict reads (streams.health.bus_health): lost entries or a long lag degrade a stream,
    # dead letters alone do not (they wait for a person, the stream flows).
    return "degraded" if figures["errors"] or figures["total_lag"] > LAG_DEGRADED else "healthy"


def stream_health_data() -> dict[str, Any]:
    """The bus's verdict and each stream's length, pending, lag and dead letters, read from Redis now."""
    bus = bus_health(sample=False)  # the listeners take the throughput samples
    streams = [
        {"name": name, "length": figures["length"], "pending": figures["total_pending"], "lag": figures["total_lag"],
         "dead_letters": figures["dlq"]["total_messages"], "status": _stream_status(figures)}
        for name, figures in bus["streams"].items()
    ]  # fmt: skip
    return {"overall_status": bus["system_health"]["overall_status"], "streams": streams}


def system_metrics_broadcast() -> dict[str, bool]:
    """``system_metrics`` and ``stream_health`` to every socket; which of them went out."""
    return {
        Event.SYSTEM_METRICS: broadcast(Event.SYSTEM_METRICS, system_metrics_data()),
        Event.STREAM_HEALTH: broadcast(Event.STREAM_HEALTH, stream_health_data()),
    }
