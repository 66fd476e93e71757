"""ASGI entry point: HTTP through Django with bounded bodies; WebSocket ``/ws`` through the Origin check."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multibot.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - needs Django set up first

from multibot.limits import BoundedBodies  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": BoundedBodies(django_asgi_app), "websocket": websocket_application()})
