"""The listeners: consume the *:mgmt:* streams, system:events and audit:events into the database."""

from __future__ import annotations

import signal
import socket
import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand

from multibot.heartbeats import heartbeat_local_processes, heartbeat_publish, wait_until_gone
from streams.catalog import LISTENERS
from streams.health import record_unread_losses, sample_throughput
from streams.worker import StreamWorker, discover

HEARTBEAT_SECONDS = 5.0
# After a local gateway is gone, one more read takes in what it published last.
DRAIN_SECONDS = 0.5


class Command(BaseCommand):
    help = "Consume the management-side streams (results, status, system and audit events)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--consumer",
            default=f"listeners@{socket.gethostname()}",
            help="consumer name; keep it stable so a restart finishes its own pending entries",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.worker = StreamWorker(
            registry=discover("listeners"), group=LISTENERS, consumer=options["consumer"], service_name="listeners"
        )
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.stdout.write(f"listeners {options['consumer']} on {len(self.worker.streams)} streams")
        self.stdout.flush()
        totals = self.worker.run(tick=self.beat, tick_seconds=HEARTBEAT_SECONDS)
        self.stdout.write(f"listeners stopped: {totals}")

    def beat(self) -> None:
        totals = self.worker.totals
        heartbeat_publish(component="listeners", details={"processed": totals.processed, "dead": totals.dead})
        sample_throughput()
        record_unread_losses()

    def on_signal(self, signum: int, frame: Any) -> None:
        # Finish the current batch; the loop ends at its next check. When a gateway of this machine
        # is stopping too (`make run`'s Ctrl-C), its last reports (bots stopped) are taken in first.
        if getattr(self, "stop_requested", False):
            self.worker.stop()  # asked twice: now
            return
        self.stop_requested = True
        threading.Thread(target=self.stop_after_local_gateways, name="stop-after-gateway", daemon=True).start()

    def stop_after_local_gateways(self) -> None:
        try:
            gateways = heartbeat_local_processes(components=["gateway"])
        except redis.RedisError:
            gateways = []
        if gateways:
            wait_until_gone(gateways, timeout=settings.MONITORING["shutdown_wait_seconds"])
            time.sleep(DRAIN_SECONDS)
        self.worker.stop()
