"""Heartbeats of long-running components (gateway, listeners, workers), kept in Redis with a TTL."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from django.conf import settings

from multibot.redis_client import redis_client, redis_key


def heartbeat_publish(*, component: str, details: dict[str, Any] | None = None) -> None:
    instance = f"{socket.gethostname()}:{os.getpid()}"
    payload = {"instance": instance, "at": time.time(), **(details or {})}
    redis_client().set(
        redis_key("heartbeat", component, instance),
        json.dumps(payload),
        ex=settings.MONITORING["heartbeat_ttl_seconds"],
    )


def heartbeat_list(*, component: str) -> list[dict[str, Any]]:
    client = redis_client()
    keys = sorted(client.scan_iter(match=redis_key("heartbeat", component, "*"), count=100))
    values = client.mget(keys) if keys else []
    return [json.loads(value) for value in values if value]
