"""The ``/ws`` protocol, written once: event types, client message types, groups, close codes, the message shape.

No Django models and no I/O: the consumer, ``broadcast`` and the producers all import it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

# The subprotocol the server accepts with; the credential rides in a second one ("bearer.<jwt>", "ticket.<t>").
SUBPROTOCOL = "multibot"
BEARER_PREFIX = "bearer."
TICKET_PREFIX = "ticket."

# Closed by the server: the client fell behind (its queue overflowed); its session was ended meanwhile.
CLOSE_TOO_SLOW = 4008
CLOSE_REVOKED = 4003
# A bot's relayed message socket: refused before the handshake completes, as freqtrade refuses a bad
# token (a server answers such a handshake with HTTP 403); the bot not reachable now (try again
# later); the bot's socket ended otherwise than normally.
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_BOT_ERROR = 1011


class Event(StrEnum):
    """What the server pushes; a client subscribes to any of these (all by default)."""

    BOT_STATUS_UPDATE = "bot_status_update"
    BOT_METRICS = "bot_metrics"
    TRADE_NOTIFICATION = "trade_notification"
    JOB_PROGRESS = "job_progress"
    SYSTEM_METRICS = "system_metrics"
    STREAM_HEALTH = "stream_health"
    AUDIT_EVENT = "audit_event"


class Reply(StrEnum):
    """What the server sends of its own accord or in answer to the client; never filtered by a subscription."""

    WELCOME = "welcome"
    SUBSCRIBED = "subscribed"
    PING = "ping"
    PONG = "pong"
    ERROR = "error"


class Request(StrEnum):
    """What a client may send."""

    SUBSCRIBE = "subscribe"
    PING = "ping"


EVERYONE = "everyone"
SUPERUSERS = "superusers"


def owner_group(owner_id: int) -> str:
    return f"owner.{int(owner_id)}"


def groups_for(*, user_id: int, is_superuser: bool) -> list[str]:
    """A superuser's socket hears every owner's events through ``superusers``: never also its own group,
    or the events of its own bots would arrive twice."""
    return [SUPERUSERS if is_superuser else owner_group(user_id), EVERYONE]


def audience(owner_id: int | None) -> list[str]:
    """The groups an event about ``owner_id``'s things goes to (None: every authenticated socket)."""
    return [EVERYONE] if owner_id is None else [owner_group(owner_id), SUPERUSERS]


_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def message(type: str, data: Mapping[str, Any] | list[Any], *, at: float | None = None) -> str:
    """One server message as sent: ``{"type", "data", "at"}`` (epoch seconds), encoded once for every socket."""
    return _encode({"type": str(type), "data": data, "at": time.time() if at is None else at})
