"""Run the embedded Redis server in the foreground (`make run`'s redis process); it stops last."""

from __future__ import annotations

import signal
import threading
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from multibot.embedded_redis import EmbeddedRedis
from multibot.heartbeats import heartbeat_local_processes, wait_until_gone


class Command(BaseCommand):
    help = "Run the embedded Redis server (data and AOF under MULTIBOT_HOME/redis)."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.REDIS_EMBEDDED:
            # Stay up as a no-op so `make run` runs the same processes with or without an external Redis.
            self.stdout.write("REDIS_URL is set: using that Redis, no embedded server started.")
            self.stdout.flush()
            signal.pause()
            return
        self.stopping = threading.Event()
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        # Detached: `make run`'s Ctrl-C stops every process at once, but the gateway still reports
        # its bots stopped through this server; it is stopped here, once they are done.
        server = EmbeddedRedis(settings.EMBEDDED_REDIS_DIR)
        server.start(detached=True, quiet=False)
        self.stdout.write(f"embedded redis on 127.0.0.1:{server.port}, data in {server.directory}")
        self.stdout.flush()
        while not self.stopping.wait(0.2):
            if server.process is not None and server.process.poll() is not None:
                raise CommandError(f"valkey-server exited with code {server.process.returncode}")
        waited = self.wait_for_clients(timeout=settings.MONITORING["shutdown_wait_seconds"])
        server.stop()
        self.stdout.write(f"embedded redis stopped (after {', '.join(waited) or 'no one'})")

    def wait_for_clients(self, *, timeout: float) -> list[str]:
        """Wait, up to ``timeout``, for the local processes that publish a heartbeat here to exit."""
        try:
            processes = heartbeat_local_processes()
        except redis.RedisError:
            return []
        names = [f"pid {process.pid}" for process in processes]
        if processes:
            self.stdout.write(f"waiting up to {timeout:.0f}s for {', '.join(names)} to stop first")
            self.stdout.flush()
            wait_until_gone(processes, timeout=timeout)
        return names

    def on_signal(self, signum: int, frame: Any) -> None:
        self.stopping.set()
