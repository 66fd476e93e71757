"""The process-wide Redis connection (settings.REDIS_URL) and our key namespace.

Two ways in. ``redis_client()`` waits for Redis (seconds, with redis-py's retries): for work that must
reach it, like a command published to the bus. ``request_redis()`` is for work a request can do
without Redis (rate limits, health): it waits a tenth of a second at most, never retries, and after a
failure skips Redis for a few seconds without touching the network (settings.REDIS_REQUEST), so that
while Redis is slow or gone a read answers in its normal time, not after a timeout per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_request_clients: dict[str, redis.Redis] = {}
# Per REDIS_URL: when a request_redis() call last failed (monotonic) and the error's name.
_failures: dict[str, tuple[float, str]] = {}


def redis_client() -> redis.Redis:
    """A client on a shared pool, for work that must reach Redis: it waits seconds (and retries) for it."""
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


class RedisSkipped(redis.ConnectionError):
    """Redis was not asked: a request_redis() call failed ``failed_ago`` seconds ago, with ``error``."""

    def __init__(self, *, failed_ago: float, error: str) -> None:
        super().__init__(f"skipped: failed {int(failed_ago)}s ago")
        self.failed_ago, self.error = failed_ago, error


def _request_client(url: str) -> redis.Redis:
    client = _request_clients.get(url)
    if client is None:
        with _lock:
            client = _request_clients.get(url)
            if client is None:
                timeout = settings.REDIS_REQUEST["timeout_seconds"]
                client = redis.Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 0), decode_responses=True,
                )  # fmt: skip
                _request_clients[url] = client
    return client


@contextmanager
def request_redis() -> Iterator[redis.Redis]:
    """The short-timeout client, for a request's work that can do without Redis.

    Raises RedisSkipped at once, asking nothing, within settings.REDIS_REQUEST["skip_seconds"] of a
    failure; a redis.RedisError or OSError raised in the block is such a failure. Callers catch
    redis.RedisError, RedisSkipped included::

        with request_redis() as client:
            client.incr(key)
    """
    url = settings.REDIS_URL
    failure = _failures.get(url)
    if failure is not None:
        failed_ago = time.monotonic() - failure[0]
        if failed_ago < settings.REDIS_REQUEST["skip_seconds"]:
            raise RedisSkipped(failed_ago=failed_ago, error=failure[1])
    try:
        yield _request_client(url)
    except (redis.RedisError, OSError) as exc:
        with _lock:
            _failures[url] = (time.monotonic(), type(exc).__name__)
        raise


def request_redis_reset() -> None:
    """Forget past failures: the next request_redis() asks Redis again (for tests, which restart Redis)."""
    with _lock:
        _failures.clear()


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
