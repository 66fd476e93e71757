"""Fixtures of the WebSocket tests: sockets opened on the real ASGI application, the real channel layer (Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from multibot.asgi import application
from tests.support.websocket import WebsocketCommunicator

TIMEOUT = 5


class Socket:
    """One client of ``/ws``: its handshake's outcome and the messages it reads, decoded."""

    def __init__(self, *protocols: str, path: str = "/ws", headers: list[tuple[bytes, bytes]] | None = None,
                 app: Any = application) -> None:  # fmt: skip
        offered = list(protocols) or None
        self.communicator = WebsocketCommunicator(app, path, headers=headers or [], subprotocols=offered)
        self.accepted: bool = False
        self.detail: Any = None

    async def open(self) -> Socket:
        self.accepted, self.detail = await self.communicator.connect(timeout=TIMEOUT)
        return self

    async def read(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout))

    async def read_type(self, type: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next message of ``type``, skipping others (keepalive pings)."""
        while True:
            message = await self.read(timeout)
            if message["type"] == type:
                return message

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.communicator.send_to(text_data=message if isinstance(message, str) else json.dumps(message))

    async def nothing_arrives(self, timeout: float = 0.5) -> bool:
        return await self.communicator.receive_nothing(timeout)

    async def close(self) -> None:
        await self.communicator.disconnect(timeout=TIMEOUT)


def bearer(token: str) -> tuple[str, str]:
    return "multibot", f"bearer.{token}"


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


@pytest.fixture(autouse=True)
def _committed(committed_db: None) -> None:
    """The consumer reads accounts from its own thread's connection: data must be committed to be seen."""
