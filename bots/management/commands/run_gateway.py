"""The trading gateway: consumes the trading commands and supervises this host's freqtrade processes."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from bots.gateway import service
from bots.handlers import gateway_registry
from multibot.redis_client import wait_for_redis
from streams.bus import ensure_host_group
from streams.catalog import TRADING_COMMANDS, trading_group
from streams.worker import StreamWorker


class Command(BaseCommand):
    help = "Run the trading gateway: the parent and supervisor of this host's bot processes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--consumer",
            default=f"gateway@{service.HOST}",
            help="consumer name; keep it stable so a restart finishes its own pending commands",
        )
        parser.add_argument("--stop-bots-on-exit", action="store_true",
                            help="stop every bot when the gateway stops (make run); otherwise they keep "
                                 "running and the next gateway adopts them")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        gateway = service.Gateway(stop_bots_on_exit=options["stop_bots_on_exit"])
        self.worker = StreamWorker(
            registry=gateway_registry(gateway),
            group=trading_group(service.HOST),  # this host's own group: its commands wait for it
            consumer=options["consumer"],
            service_name=service.PRODUCER,
            block_ms=500,
            # Commands this host will never read (its group made again, or trimmed while it was away):
            # what they asked for is in the database.
            on_missed=lambda stream: gateway.converge(reason=f"commands on {stream} missed"),
        )
        # Reconciling reports what it finds through Redis, which may be starting with us (`make run`)
        # or loading its data. Until then no bot is ours, so a signal may end us the default way.
        wait_for_redis(log=self.say)
        # The host's group before the reconcile: what was asked before it exists is in the database, which
        # the reconcile reads; whatever is asked after is delivered in it.
        if ensure_host_group(TRADING_COMMANDS, self.worker.group):
            self.say(f"gateway on {service.HOST}: created its command group {self.worker.group}")
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        report = gateway.reconcile()
        self.say(f"gateway on {service.HOST}: " + ", ".join(f"{k} {v}" for k, v in report.items()))
        try:
            self.worker.run(tick=gateway.tick, tick_seconds=0.5)
        finally:
            gateway.shutdown()
        self.stdout.write("gateway stopped")

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def on_signal(self, signum: int, frame: Any) -> None:
        self.worker.stop()
