"""Serve the replay exchange on 127.0.0.1 (`make run`'s replay process)."""

from __future__ import annotations

from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from marketdata.replay_market import ReplayMarket
from marketdata.replay_server import build_app
from marketdata.services import exchange_dir


class Command(BaseCommand):
    help = "Serve stored candles as a live Binance-like market on 127.0.0.1 (for dry-run bots and backtests)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=settings.REPLAY["port"])

    def handle(self, *args: Any, **options: Any) -> None:
        conf = settings.REPLAY
        market = ReplayMarket(
            exchange_dir("replay"), anchor_file=conf["anchor_file"],
            warmup_days=conf["warmup_days"], on_end=conf["on_end"],
        )  # fmt: skip
        market.refresh(force=True)
        if market.clock is not None:
            self.stdout.write(f"replay exchange: {len(market.pairs)} pairs, replaying from the stored "
                              f"history with warmup {conf['warmup_days']} days, on end: {conf['on_end']}")  # fmt: skip
        else:
            self.stdout.write("replay exchange: no candles stored yet; serving as soon as some are")
        self.stdout.flush()
        # Loopback only: the replay exchange is for this host's bots and jobs.
        uvicorn.run(build_app(market), host="127.0.0.1", port=options["port"], log_level="warning", lifespan="off")
