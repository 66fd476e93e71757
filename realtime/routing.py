"""The WebSocket routes, each behind the Origin check: ``/ws``, and each bot's relayed message WebSocket."""

from __future__ import annotations

from channels.routing import URLRouter
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from realtime.auth import OriginCheck
from realtime.consumers import BotMessageRelay, RealtimeConsumer

realtime = OriginCheck(RealtimeConsumer.as_asgi())

websocket_urlpatterns = [
    path("ws", realtime),
    path("ws/", realtime),
    # Where FreqUI looks for a bot's socket under the bot's URL (``<server>/api/v1/bots/7/ft``); FreqUI
    # pages of other origins (settings.FREQUI_ORIGINS) may open it.
    path("api/v1/bots/<int:pk>/ft/api/v1/message/ws", OriginCheck(BotMessageRelay.as_asgi(), frequi=True)),
    # Any other path: the handshake is refused (403), rather than the router raising.
    re_path(r"", WebsocketDenier.as_asgi()),
]


def websocket_application() -> URLRouter:
    return URLRouter(websocket_urlpatterns)
