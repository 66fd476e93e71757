"""Liveness of running bots: each one's own freqtrade API probed off the gateway's loop, with a short timeout.

A bot answers when its ``/api/v1/ping`` does and, when the gateway holds its API credentials, its
``/api/v1/health`` says the main loop ran lately: freqtrade serves its API from a thread of its own,
so a hung main loop still answers the ping. A process frozen whole (SIGSTOP, swapped out) accepts the
connection in the kernel and answers nothing: the timeout is what notices it.

Only the probing lives here; the supervisor counts the misses and decides what they mean
(bots/gateway/supervisor.py). No statuses, no models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Liveness:
    """How often each bot is probed, how long a probe may take, and how many misses in a row mean what."""

    interval: float = 2.0
    timeout: float = 1.5
    unresponsive_after: int = 3
    restart_after: int = 12
    # freqtrade's main loop ends an iteration every few seconds: a last one older than this is a hang.
    loop_stale: float = 120.0

    @classmethod
    def from_settings(cls, conf: Mapping[str, Any]) -> Liveness:
        """From the gateway's settings (``GATEWAY`` in multibot/settings.py)."""
        return cls(interval=conf["liveness_interval_seconds"], timeout=conf["liveness_timeout_seconds"],
                   unresponsive_after=conf["unresponsive_after_misses"],
                   restart_after=conf["restart_after_misses"], loop_stale=conf["loop_stale_seconds"])  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """One probe's outcome: whether the bot answered, when the probe ended, and (a miss) what failed."""

    answered: bool
    at: float
    why: str = ""


class Prober:
    """Probes on a small pool of threads: the gateway's loop only starts them and collects the finished ones."""

    def __init__(self, liveness: Liveness, *, workers: int = 8) -> None:
        self.liveness = liveness
        # One client for every probe (it is thread-safe): no new connection pool, no TLS context per probe.
        self._client = httpx.Client(timeout=liveness.timeout, trust_env=False)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bot-probe")

    def submit(self, port: int, auth: tuple[str, str] | None) -> Future[Answer]:
        return self._pool.submit(self.probe, port, auth)

    def probe(self, port: int, auth: tuple[str, str] | None) -> Answer:
        """``/ping`` within the timeout, then (with credentials) ``/health`` within what is left of it."""
        deadline = time.monotonic() + self.liveness.timeout
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            ping = self._client.get(f"{base}/ping")
        except httpx.HTTPError as exc:
            return Answer(answered=False, at=time.time(), why=f"/ping: {type(exc).__name__}")
        if ping.status_code != 200:
            return Answer(answered=False, at=time.time(), why=f"/ping answered {ping.status_code}")
        if auth is None:
            return Answer(answered=True, at=time.time())
        try:
            health = self._client.get(f"{base}/health", auth=auth, timeout=max(0.05, deadline - time.monotonic()))
        except httpx.HTTPError as exc:
            return Answer(answered=False, at=time.time(), why=f"/health: {type(exc).__name__}")
        return self._judge_health(port, health)

    def _judge_health(self, port: int, health: httpx.Response) -> Answer:
        now = time.time()
        try:
            last_process = health.json().get("last_process_ts") if health.status_code == 200 else None
        except ValueError:
            last_process = None
        if health.status_code != 200:
            # It answered, so it is alive; whether its loop runs cannot be told (credentials refused, say).
            logger.debug("bot on port %s: /health answered %s", port, health.status_code)
        # None until the loop's first iteration has ended: a bot still starting up is no miss.
        if isinstance(last_process, int | float) and now - last_process > self.liveness.loop_stale:
            return Answer(answered=False, at=now, why=f"its main loop last ran {now - last_process:.0f}s ago")
        return Answer(answered=True, at=now)

    def shutdown(self) -> None:
        # Probes in flight end within their timeout; their answers are not wanted any more.
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()
