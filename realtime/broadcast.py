"""The one way sync code reaches WebSocket clients: ``broadcast(type, data, owner_id=...)``.

Called after commit, by whoever changed the state (the listeners, a beat task). The database already
holds what the event tells, so a channel layer that is down loses only the news: one warning, no raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from realtime.protocol import SUPERUSERS, audience, message

logger = logging.getLogger(__name__)

# The channel-layer message type; the consumer's ``realtime_event`` receives it.
LAYER_TYPE = "realtime.event"


async def _send(groups: list[str], event: str, text: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    payload = {"type": LAYER_TYPE, "event": event, "text": text}
    # Bounded: a Redis that accepts the connection and then says nothing must not hold the caller.
    timeout = settings.REALTIME["send_timeout_seconds"]
    for group in groups:
        await asyncio.wait_for(layer.group_send(group, payload), timeout)


def broadcast(
    type: str, data: Mapping[str, Any], *, owner_id: int | None = None, superusers_only: bool = False
) -> bool:
    """Send one event to the sockets that may see it: ``owner_id``'s and the superusers' (None: every
    authenticated socket; ``superusers_only``: theirs alone). False when it could not be sent."""
    groups = [SUPERUSERS] if superusers_only else audience(owner_id)
    text = message(type, data)
    try:
        async_to_sync(_send)(groups, str(type), text)
    except Exception as exc:  # noqa: BLE001 - whatever the layer raised, the caller's work is already done
        logger.warning("%s not broadcast to %s: %s", type, ",".join(groups), exc or exc.__class__.__name__)
        return False
    return True
