"""The WebSocket consumers: ``/ws`` (RealtimeConsumer), and a bot's message WebSocket relayed (BotMessageRelay).

``/ws``: authenticate in ``connect``, join the owner's groups, dispatch on the client's ``type``.
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
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bots.ftclient import FreqtradeApiError, message_socket_url
from bots.models import Bot
from bots.selectors import runs_here
from realtime import auth
from realtime.protocol import (
    CLOSE_BOT_ERROR,
    CLOSE_POLICY_VIOLATION,
    CLOSE_REVOKED,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN_LATER,
    SUBPROTOCOL,
    Event,
    Reply,
    Request,
    groups_for,
    message,
)

logger = logging.getLogger(__name__)
# The relay's client to a bot's socket logs here, never below INFO: websockets' debug lines would
# show the request line, and with it the bot's ws_token.
_upstream_logger = logging.getLogger("realtime.bot_socket")
_upstream_logger.setLevel(logging.INFO)

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


# -- a bot's message WebSocket, relayed ---------------------------------------------------------------
# A frame either way may be this large (uvicorn's own bound on what a client sends): a bot's
# analyzed_df message for a long pair history runs into megabytes.
MAX_FRAME_BYTES = 16 * 1024 * 1024
UPSTREAM_OPEN_SECONDS = 5.0
# A channel-layer alias that is not configured: the relay talks to its bot, not to the channel layer.
_NO_CHANNEL_LAYER = ""


class BotMessageRelay(AsyncWebsocketConsumer):
    """``/api/v1/bots/<id>/ft/api/v1/message/ws?token=...``: the bot's own message WebSocket, through Multibot.

    FreqUI opens it with the access token of its login to this bot (or an API client with a Multibot
    access token). The relay opens the bot's own socket with the bot's ws_token, which the caller
    never sees, and passes every frame on as it came, both ways (text as text, bytes as bytes; the
    bot's secrets masked, as the REST pass-through masks them), until either side closes. Refused (no
    such bot of the caller's, a bad token): closed with 1008 before the handshake completes, as
    freqtrade refuses a bad token. The bot not running or not answering: accepted, then closed with
    1013. The account's right to the bot is checked again every ``ping_seconds`` and when its token
    expires: closed with 4003 once it is gone.
    """

    channel_layer_alias = _NO_CHANNEL_LAYER
    socket: auth.BotSocket | None = None
    upstream: ClientConnection | None = None

    async def connect(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.ended = False
        self.socket = await database_sync_to_async(auth.bot_socket_open)(self.scope)
        if self.socket is None:
            await self.close(code=CLOSE_POLICY_VIOLATION)  # before accept: no frame reaches the caller
            return
        bot = self.socket.bot
        self.secrets = bot.secret_values()
        self.upstream = await self._open_upstream(bot)
        await self.accept()
        if self.upstream is None:
            await self._end(CLOSE_TRY_AGAIN_LATER, reason=f"Bot {bot.name} is not reachable; is it running?")
            return
        self.tasks = [asyncio.create_task(self._from_bot()), asyncio.create_task(self._watch())]

    async def _open_upstream(self, bot: Bot) -> ClientConnection | None:
        # As the REST pass-through: a bot Multibot believes stopped, or whose API is silent, gets no call.
        if bot.status not in Bot.ACTIVE_STATUSES or bot.status == Bot.Status.UNRESPONSIVE or not runs_here(bot):
            return None  # not running, or its API is on another machine's 127.0.0.1
        try:
            return await connect(message_socket_url(bot), open_timeout=UPSTREAM_OPEN_SECONDS, max_size=MAX_FRAME_BYTES,
                                 proxy=None, logger=_upstream_logger)  # fmt: skip
        except (OSError, TimeoutError, WebSocketException, FreqtradeApiError) as exc:
            # Its type only: an error of the handshake may quote what was sent.
            logger.info("bot %s: its message socket did not open (%s)", bot.pk, type(exc).__name__)
            return None

    async def _end(self, code: int, reason: str | None = None) -> None:
        """Close the caller's socket, once, whichever side ended first."""
        if not self.ended:
            self.ended = True
            await self.close(code=code, reason=reason)

    def _masked(self, frame: str | bytes) -> str | bytes:
        if isinstance(frame, str):
            for secret in self.secrets:
                frame = frame.replace(secret, "********")
            return frame
        for secret in self.secrets:
            frame = frame.replace(secret.encode(), b"********")
        return frame

    # -- the bot to the caller ----------------------------------------------------------------------
    async def _from_bot(self) -> None:
        assert self.upstream is not None
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.upstream:
                frame = self._masked(frame)
                if isinstance(frame, str):
                    await self.send(text_data=frame)
                else:
                    await self.send(bytes_data=frame)
        code = self.upstream.close_code
        # The bot's own close goes on when it is an ordinary one; anything else (a lost connection
        # included, which has no code a server may send) is the bot's error.
        await self._end(code if code in (1000, 1001) else CLOSE_BOT_ERROR)

    # -- the caller to the bot ----------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.upstream is None or self.ended:
            return
        with contextlib.suppress(ConnectionClosed):  # the reader sees it too, and closes the caller's socket
            await self.upstream.send(text_data if text_data is not None else bytes_data or b"")

    # -- the caller's right to the bot ----------------------------------------------------------------
    async def _watch(self) -> None:
        assert self.socket is not None
        interval = settings.REALTIME["ping_seconds"]
        while not self.ended:
            # Wake at the token's expiry too: the socket ends with it, not up to a check later.
            await asyncio.sleep(max(0.0, min(interval, self.socket.identity.expires_at - time.time())))
            try:
                valid = await database_sync_to_async(auth.bot_socket_still_valid)(self.socket)
            except Exception:  # the database away: keep the socket, check again next time
                logger.warning("relayed bot socket not re-checked: the database is unavailable", exc_info=True)
                valid = True
            if not valid:
                await self._end(CLOSE_REVOKED)
                await self._close_upstream()

    async def _close_upstream(self) -> None:
        if self.upstream is not None:
            with contextlib.suppress(Exception):  # already closed, or the bot gone: nothing more to do
                await self.upstream.close()

    async def disconnect(self, code: int) -> None:
        self.ended = True
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        await self._close_upstream()
        for task in self.tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self.tasks = []
