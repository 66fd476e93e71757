"""Run the embedded Redis server in the foreground (the Procfile's redis process)."""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from multibot.embedded_redis import EmbeddedRedis


class Command(BaseCommand):
    help = "Run the embedded Redis server (data and AOF under MULTIBOT_HOME/redis)."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.REDIS_EMBEDDED:
            # Stay up as a no-op so the Procfile is the same with or without an external Redis.
            self.stdout.write("REDIS_URL is set: using that Redis, no embedded server started.")
            self.stdout.flush()
            signal.pause()
            return
        server = EmbeddedRedis(settings.EMBEDDED_REDIS_DIR)
        self.stdout.write(f"embedded redis on 127.0.0.1:{server.port}, data in {server.directory}")
        self.stdout.flush()
        server.exec()
