"""The process-wide Redis connection (settings.REDIS_URL) and our key namespace."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """A client on a shared pool; short timeouts so a dead Redis fails a request fast, not slowly."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=2.0,
                    socket_connect_timeout=1.0,
                    health_check_interval=30,
                    decode_responses=True,
                )
                _clients[url] = client
    return client


def redis_key(*parts: object) -> str:
    return settings.REDIS_KEY_PREFIX + ":".join(str(part) for part in parts)
