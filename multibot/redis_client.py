"""The process-wide Redis connection (settings.REDIS_URL) and our key namespace."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

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


def redis_url_for_display(url: str) -> str:
    """``url`` with its password left out, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def wait_for_redis(*, log: Callable[[str], None], interval: float = 0.5, log_every: float = 10.0) -> float:
    """Return once Redis answers a PING (not LOADING its data); the seconds it took.

    For a process that cannot do anything useful without Redis and is started together with it
    (`make run` starts the embedded server at the same moment as everything else, and a restarted
    server replays its AOF first). It never gives up: a process manager would only start it again.
    ``log`` gets one line when the wait begins and one every ``log_every`` seconds while it lasts.
    """
    started = time.monotonic()
    logged_at: float | None = None
    while True:
        try:
            redis_client().ping()  # a loading server answers BusyLoadingError, a ConnectionError
            return time.monotonic() - started
        except redis.RedisError as exc:
            now = time.monotonic()
            if logged_at is None or now - logged_at >= log_every:
                waited = f" (waited {now - started:.0f}s)" if logged_at is not None else ""
                log(f"waiting for Redis at {redis_url_for_display(settings.REDIS_URL)}: {exc}{waited}")
                logged_at = now
        time.sleep(interval)
