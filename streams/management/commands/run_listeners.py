"""The listeners: consume the *:mgmt:* streams, system:events and audit:events into the database.

Beside the consumer, on its own thread, the outbox relay (streams/outbox.py): commands committed
while Redis was away are published from here once it answers.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand

from multibot.heartbeats import heartbeat_local_processes, heartbeat_publish, wait_until_gone
from streams import outbox
from streams.catalog import LISTENERS
from streams.health import record_unread_losses, sample_throughput
from streams.worker import StreamWorker, discover

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
PRUNE_SECONDS = 600.0
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
        self.relay_stop = threading.Event()
        relay = threading.Thread(target=self.relay, name="outbox-relay", daemon=True)
        relay.start()
        try:
            totals = self.worker.run(tick=self.beat, tick_seconds=HEARTBEAT_SECONDS)
        finally:
            self.relay_stop.set()
            relay.join(10)
        self.stdout.write(f"listeners stopped: {totals}")

    def relay(self) -> None:
        """Publish the outbox every ``outbox_relay_seconds``; prune what was sent long ago now and then."""
        from django.db import connection

        pruned_at = 0.0
        try:
            while not self.relay_stop.wait(settings.STREAMS["outbox_relay_seconds"]):
                try:
                    outbox.outbox_relay()
                    if time.monotonic() - pruned_at > PRUNE_SECONDS:
                        outbox.outbox_prune()
                        pruned_at = time.monotonic()
                except Exception:
                    logger.exception("outbox relay round failed; the next one tries again")
                    connection.close()  # a broken connection is not reused
        finally:
            connection.close()

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
