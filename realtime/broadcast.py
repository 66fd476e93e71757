"""The one way sync code reaches WebSocket clients: ``broadcast(type, data, owner_id=...)``.

Called after commit, by whoever changed the state (the listeners, a beat task). The database already
holds what the event tells, so a channel layer that is down loses only the news: one warning, no raise.

The channel layer is asyncio code whose Redis connections belong to the event loop that opened them.
``async_to_sync`` from a plain thread (a listener) runs each call on a new loop, so every event would
open, authenticate and close a connection: measured by benchmarks/realtime.py, that capped a listener
below 150 events/s, with seconds of latency at 200/s. Every broadcast of a process runs instead on one
loop of its own, on a daemon thread, whose connections stay open.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from realtime.protocol import SUPERUSERS, audience, message

logger = logging.getLogger(__name__)

# The channel-layer message type; the consumer's ``realtime_event`` receives it.
LAYER_TYPE = "realtime.event"

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0


def _layer_loop() -> asyncio.AbstractEventLoop:
    """This process's broadcast loop, started on first use (and again in a forked child: threads do not fork)."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="realtime-broadcast", daemon=True).start()
        return _loop


async def _send(groups: list[str], event: str, text: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    payload = {"type": LAYER_TYPE, "event": event, "text": text}
    for group in groups:
        await layer.group_send(group, payload)


def broadcast(
    type: str, data: Mapping[str, Any], *, owner_id: int | None = None, superusers_only: bool = False
) -> bool:
    """Send one event to the sockets that may see it: ``owner_id``'s and the superusers' (None: every
    authenticated socket; ``superusers_only``: theirs alone). False when it could not be sent."""
    groups = [SUPERUSERS] if superusers_only else audience(owner_id)
    text = message(type, data)
    future = asyncio.run_coroutine_threadsafe(_send(groups, str(type), text), _layer_loop())
    try:
        # Bounded: a Redis that accepts the connection and then says nothing must not hold the caller.
        future.result(timeout=settings.REALTIME["send_timeout_seconds"])
    except Exception as exc:  # noqa: BLE001 - whatever the layer raised, the caller's work is already done
        future.cancel()
        logger.warning("%s not broadcast to %s: %s", type, ",".join(groups), exc or exc.__class__.__name__)
        return False
    return True
