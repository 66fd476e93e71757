"""ASGI entry point: HTTP through Django with bounded bodies; WebSocket routes join here as they are built."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multibot.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - needs Django set up first

from multibot.limits import BoundedBodies  # noqa: E402


async def websocket_refused(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """No WebSocket route is served yet: refuse the handshake (the server answers 403)."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})


application = ProtocolTypeRouter({"http": BoundedBodies(django_asgi_app), "websocket": websocket_refused})
