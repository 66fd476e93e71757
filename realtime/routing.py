"""The WebSocket routes: ``/ws``, behind the Origin check."""

from __future__ import annotations

from channels.routing import URLRouter
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from realtime.auth import OriginCheck
from realtime.consumers import RealtimeConsumer

websocket_urlpatterns = [
    path("ws", RealtimeConsumer.as_asgi()),
    path("ws/", RealtimeConsumer.as_asgi()),
    # Any other path: the handshake is refused (403), rather than the router raising.
    re_path(r"", WebsocketDenier.as_asgi()),
]


def websocket_application() -> OriginCheck:
    return OriginCheck(URLRouter(websocket_urlpatterns))
