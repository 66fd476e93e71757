"""Writes of the realtime app: WebSocket tickets, and the periodic fleet-wide events."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction

from audit import events
from audit.services import Actor
from multibot.errors import UnavailableError
from realtime import auth


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
