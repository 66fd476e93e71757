"""The ``/ws`` consumer: authenticate in ``connect``, join the owner's groups, dispatch on the client's ``type``.

Every outgoing message goes through one bounded queue per socket, drained by one sender task: a
client that reads slower than events arrive fills it, and is closed with 4008 rather than let the
server's memory grow. Events arrive already encoded (``realtime.broadcast`` encodes each once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from channels.db import aclose_old_connections, database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from realtime import auth
from realtime.protocol import (
    CLOSE_REVOKED,
    CLOSE_TOO_SLOW,
    SUBPROTOCOL,
    Event,
    Reply,
    Request,
    groups_for,
    message,
)

logger = logging.getLogger(__name__)

EVENT_TYPES = [str(event) for event in Event]
# A client message is a type and a list of types at most: anything bigger is not one.
MAX_CLIENT_MESSAGE = 16 * 1024


class RealtimeConsumer(AsyncWebsocketConsumer):
    identity: auth.Identity | None = None

    async def connect(self) -> None:
        conf = settings.REALTIME
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=conf["queue_size"])
        self.tasks: list[asyncio.Task[None]] = []
        self.closing = False
        self.subscribed = set(EVENT_TYPES)
        self.identity = await database_sync_to_async(auth.authenticate)(self.scope)
        if self.identity is None:
            await self.close()  # before accept: the server answers the handshake with 403
            return
        user = self.identity.user
        self.groups = groups_for(user_id=user.pk, is_superuser=user.is_superuser)
        try:
            for group in self.groups:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            logger.warning("websocket refused: the channel layer is unavailable", exc_info=True)
            self.groups = []
            await self.close()
            return
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        self._put(message(Reply.WELCOME, {
            "user": {"id": user.pk, "username": user.get_username(), "is_superuser": user.is_superuser},
            "types": EVENT_TYPES, "subscribed": EVENT_TYPES, "ping_interval": conf["ping_seconds"],
        }))  # fmt: skip
        self.tasks = [asyncio.create_task(self._sender()), asyncio.create_task(self._keepalive())]

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self._stop_tasks()
        try:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        except Exception:  # noqa: BLE001 - Redis away: the membership expires with the layer's group_expiry
            logger.warning("websocket groups not left: the channel layer is unavailable")
        await aclose_old_connections()
        raise StopConsumer

    # -- from the client ---------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_CLIENT_MESSAGE:
            return self._error('messages are JSON text: {"type": ..., "data": ...}')
        try:
            request = json.loads(text_data)
        except ValueError:
            return self._error("the message is not JSON")
        kind = request.get("type") if isinstance(request, dict) else None
        if kind == Request.PING:
            self._put(message(Reply.PONG, {}))
        elif kind == Request.SUBSCRIBE:
            self._subscribe(request.get("data"))
        else:
            self._error(f"unknown message type {kind!r}; known: {', '.join(Request)}")

    def _subscribe(self, types: Any) -> None:
        if not isinstance(types, list) or not all(isinstance(item, str) for item in types):
            return self._error("subscribe takes a list of event types")
        unknown = sorted(set(types) - set(EVENT_TYPES))
        if unknown:
            return self._error(f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
        self.subscribed = set(types)
        self._put(message(Reply.SUBSCRIBED, [event for event in EVENT_TYPES if event in self.subscribed]))

    def _error(self, detail: str) -> None:
        self._put(message(Reply.ERROR, {"detail": detail}))

    # -- from the channel layer (realtime.broadcast) -----------------------------------------------
    async def realtime_event(self, event: dict[str, Any]) -> None:
        if event["event"] in self.subscribed:
            self._put(event["text"])

    # -- the way out: one bounded queue, one sender ------------------------------------------------
    def _put(self, text: str) -> None:
        if self.closing:
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self._too_slow()

    def _too_slow(self) -> None:
        """The client is not keeping up: drop what waits for it and close; the queue never grows past its bound."""
        self.closing = True
        while not self.outbox.empty():
            self.outbox.get_nowait()
        user = self.identity.user.pk if self.identity else None
        logger.warning("websocket of user %s closed: %d messages waiting, it fell behind", user, self.outbox.maxsize)
        # The sender may be stuck writing to this very client: the close goes out on its own.
        self.tasks.append(asyncio.create_task(self._close_now(CLOSE_TOO_SLOW)))

    async def _close_now(self, code: int) -> None:
        sender = self.tasks[0] if self.tasks else None
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        await self.close(code=code)

    async def _sender(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.send(text_data=text)

    async def _keepalive(self) -> None:
        """A ping every ``ping_seconds`` (proxies drop idle sockets), and a check that the session still stands."""
        interval = settings.REALTIME["ping_seconds"]
        while not self.closing:
            # Wake at the credential's expiry too: the socket ends with it, not up to a ping later.
            left = self.identity.expires_at - time.time() if self.identity is not None else interval
            await asyncio.sleep(max(0.0, min(interval, left)))
            try:
                valid = self.identity is None or await database_sync_to_async(auth.identity_still_valid)(self.identity)
            except Exception:  # the database away: keep the socket, check again next time
                logger.warning("websocket session not re-checked: the database is unavailable", exc_info=True)
                valid = True
            if not valid:
                self.closing = True
                await self._close_now(CLOSE_REVOKED)
                return
            self._put(message(Reply.PING, {}))

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        for task in self.tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self.tasks = []
