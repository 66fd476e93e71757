"""The server's ``/ws`` events as iterators: ``Client.events()`` (blocking) and ``AsyncClient.events()`` (asyncio).

The socket authenticates with the access token in a subprotocol (``bearer.<jwt>``), or with a
single-use ticket from ``POST /api/v1/ws/ticket`` (``ticket.<t>``). The server ends a socket when
its credential expires (close code 4003): the stream then refreshes the tokens and opens a new one,
as it does after any other drop when ``reconnect`` is on. Events sent while no socket was open are
not replayed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sync_connect

from multibot_client.errors import AuthenticationError, MultibotError, ServerUnreachable

EVENT_TYPES = (
    "bot_status_update", "bot_metrics", "trade_notification", "job_progress", "system_metrics", "stream_health",
    "audit_event",
)  # fmt: skip
SUBPROTOCOL = "multibot"
CLOSE_REVOKED = 4003  # the socket's credential expired or its session ended
OPEN_TIMEOUT = 10.0
RECONNECT_ATTEMPTS = 5
MAX_BACKOFF = 10.0
# Messages of the server's own (keepalive, answers): never events.
_REPLIES = frozenset({"welcome", "subscribed", "ping", "pong"})


@dataclass(frozen=True)
class Event:
    type: str
    data: Any
    at: float  # epoch seconds, when the server sent it


class EventStreamError(MultibotError):
    """The server answered the socket with an error (a message it could not read)."""


def checked_types(types: Iterable[str] | None) -> tuple[str, ...]:
    if types is None:
        return ()
    chosen = tuple(dict.fromkeys(types))
    unknown = sorted(set(chosen) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return chosen


def ws_url(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest.rstrip("/") + "/ws"


def credential_protocols(*, access_token: str | None = None, ticket: str | None = None) -> list[str]:
    return [SUBPROTOCOL, f"ticket.{ticket}" if ticket is not None else f"bearer.{access_token}"]


class _Reader:
    """What one socket's messages mean: the welcome, the subscription, events of the chosen types."""

    def __init__(self, types: tuple[str, ...]) -> None:
        self.types = types
        self.welcome: dict[str, Any] = {}

    def subscribe_message(self) -> str | None:
        return json.dumps({"type": "subscribe", "data": list(self.types)}) if self.types else None

    def read_welcome(self, text: str | bytes) -> None:
        message = json.loads(text)
        if message.get("type") != "welcome":
            raise EventStreamError(f"the server's first message was not its welcome: {message.get('type')!r}")
        self.welcome = message.get("data") or {}

    def event(self, text: str | bytes) -> Event | None:
        message = json.loads(text)
        kind = message.get("type")
        if kind == "error":
            raise EventStreamError(str((message.get("data") or {}).get("detail", message)))
        if kind in _REPLIES or (self.types and kind not in self.types):
            return None
        return Event(type=str(kind), data=message.get("data"), at=float(message.get("at") or time.time()))


def _unreachable(url: str, exc: BaseException) -> ServerUnreachable:
    return ServerUnreachable(url, str(exc) or type(exc).__name__)


def _refused(exc: InvalidStatus) -> AuthenticationError:
    return AuthenticationError(exc.response.status_code, "The server refused the socket's credentials")


class EventStream:
    """Events of the chosen types, as they arrive: iterate, or ``next(timeout=...)``.

    ``credentials(refresh)`` gives the URL and subprotocols to open a socket with; ``refresh=True``
    asks for new tokens first (after the server refused or ended the last socket).
    """

    def __init__(
        self, url: str, credentials: Callable[[bool], list[str]], types: Iterable[str] | None = None, *,
        reconnect: bool = True,
    ) -> None:  # fmt: skip
        self.url, self._credentials, self.reconnect = url, credentials, reconnect
        self._reader = _Reader(checked_types(types))
        self._socket: ClientConnection | None = None
        self._closed = False

    @property
    def welcome(self) -> dict[str, Any]:
        """The server's welcome on the current socket: the user, the event types, the ping interval."""
        return self._reader.welcome

    def open(self) -> EventStream:
        """Connect now (iteration connects by itself); events sent after this returns are received."""
        if self._socket is None:
            self._socket = self._connect(refresh=False)
        return self

    def _connect(self, *, refresh: bool) -> ClientConnection:
        try:
            socket = sync_connect(self.url, subprotocols=self._credentials(refresh), open_timeout=OPEN_TIMEOUT,
                                  max_size=None)  # fmt: skip
            socket.__enter__()  # the form websockets asks for (closed by close(), not by a with block)
        except InvalidStatus as exc:
            if exc.response.status_code == 403 and not refresh:
                return self._connect(refresh=True)  # an access token expired on the way: once more, refreshed
            raise _refused(exc) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _unreachable(self.url, exc) from exc
        try:
            self._reader.read_welcome(socket.recv(timeout=OPEN_TIMEOUT))
            subscribe = self._reader.subscribe_message()
            if subscribe:
                socket.send(subscribe)
        except (ConnectionClosed, TimeoutError) as exc:
            socket.close()
            raise _unreachable(self.url, exc) from exc
        return socket

    def _reconnect(self, closed: ConnectionClosed) -> ClientConnection:
        code = closed.rcvd.code if closed.rcvd is not None else None
        if not self.reconnect and code != CLOSE_REVOKED:
            raise _unreachable(self.url, closed)
        delay = 0.5
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                return self._connect(refresh=code == CLOSE_REVOKED)
            except ServerUnreachable:
                if attempt == RECONNECT_ATTEMPTS - 1:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
        raise _unreachable(self.url, closed)

    def next(self, timeout: float | None = None) -> Event:
        """The next event; TimeoutError when none arrives within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                raise StopIteration
            socket = self.open()._socket
            assert socket is not None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no event within {timeout:g} seconds")
            try:
                text = socket.recv(timeout=left)
            except TimeoutError:
                raise TimeoutError(f"no event within {timeout:g} seconds") from None
            except ConnectionClosed as closed:
                self._socket = None
                if self._closed:
                    raise StopIteration from None
                self._socket = self._reconnect(closed)
                continue
            event = self._reader.event(text)
            if event is not None:
                return event

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return self.next()

    def close(self) -> None:
        self._closed = True
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> EventStream:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncEventStream:
    """The asyncio twin of EventStream: ``async for event in stream``, or ``await stream.next(timeout=...)``."""

    def __init__(
        self, url: str, credentials: Callable[[bool], Awaitable[list[str]]], types: Iterable[str] | None = None, *,
        reconnect: bool = True,
    ) -> None:  # fmt: skip
        self.url, self._credentials, self.reconnect = url, credentials, reconnect
        self._reader = _Reader(checked_types(types))
        self._socket: AsyncConnection | None = None
        self._closed = False

    @property
    def welcome(self) -> dict[str, Any]:
        return self._reader.welcome

    async def open(self) -> AsyncEventStream:
        if self._socket is None:
            self._socket = await self._connect(refresh=False)
        return self

    async def _connect(self, *, refresh: bool) -> AsyncConnection:
        try:
            socket = await async_connect(self.url, subprotocols=await self._credentials(refresh),
                                         open_timeout=OPEN_TIMEOUT, max_size=None)  # fmt: skip
        except InvalidStatus as exc:
            if exc.response.status_code == 403 and not refresh:
                return await self._connect(refresh=True)
            raise _refused(exc) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _unreachable(self.url, exc) from exc
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                self._reader.read_welcome(await socket.recv())
            subscribe = self._reader.subscribe_message()
            if subscribe:
                await socket.send(subscribe)
        except (ConnectionClosed, TimeoutError) as exc:
            await socket.close()
            raise _unreachable(self.url, exc) from exc
        return socket

    async def _reconnect(self, closed: ConnectionClosed) -> AsyncConnection:
        code = closed.rcvd.code if closed.rcvd is not None else None
        if not self.reconnect and code != CLOSE_REVOKED:
            raise _unreachable(self.url, closed)
        delay = 0.5
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                return await self._connect(refresh=code == CLOSE_REVOKED)
            except ServerUnreachable:
                if attempt == RECONNECT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
        raise _unreachable(self.url, closed)

    async def next(self, timeout: float | None = None) -> Event:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                raise StopAsyncIteration
            socket = (await self.open())._socket
            assert socket is not None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no event within {timeout:g} seconds")
            try:
                async with asyncio.timeout(left):
                    text = await socket.recv()  # cancelling recv() loses nothing (websockets' guarantee)
            except TimeoutError:
                raise TimeoutError(f"no event within {timeout:g} seconds") from None
            except ConnectionClosed as closed:
                self._socket = None
                if self._closed:
                    raise StopAsyncIteration from None
                self._socket = await self._reconnect(closed)
                continue
            event = self._reader.event(text)
            if event is not None:
                return event

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        return await self.next()

    async def close(self) -> None:
        self._closed = True
        if self._socket is not None:
            await self._socket.close()
            self._socket = None

    async def __aenter__(self) -> AsyncEventStream:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
