"""App configuration for realtime."""

from __future__ import annotations

import logging

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from realtime.auth import QueryTokenRedaction

        # uvicorn logs every WebSocket handshake with its path and query, where FreqUI puts its token.
        server_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(item, QueryTokenRedaction) for item in server_log.filters):
            server_log.addFilter(QueryTokenRedaction())
