"""Generate, extend or regenerate the synthetic demo candles (what ``make run`` stores on first start)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from marketdata.demo import DEFAULT_SEED, DEMO_PAIRS
from marketdata.services import demo_data_ensure


class Command(BaseCommand):
    help = (
        "Store deterministic synthetic candles for the demo pairs (1m, and 3m, 5m, 15m, 1h, 4h resampled from "
        "them) over the last DAYS whole UTC days, extending what is stored (or replacing it with --regenerate). "
        "Listed as synthetic."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=60, help="whole UTC days before --end (default 60)")
        parser.add_argument("--end", help="YYYY-MM-DD, exclusive (default: today, 00:00 UTC)")
        parser.add_argument("--pairs", default=",".join(DEMO_PAIRS), help="comma-separated (default: all demo pairs)")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default {DEFAULT_SEED}")
        parser.add_argument("--regenerate", action="store_true", help="replace the stored demo candles")

    def handle(self, *args: Any, **options: Any) -> None:
        pairs = [pair.strip().upper() for pair in options["pairs"].split(",") if pair.strip()]
        end = None
        if options["end"]:
            try:
                end = datetime.strptime(options["end"], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise CommandError(f"--end must be YYYY-MM-DD, not {options['end']!r}") from exc
        started = time.monotonic()
        try:
            written = demo_data_ensure(
                days=options["days"], end=end, pairs=pairs, seed=options["seed"], regenerate=options["regenerate"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for candle_set in written:
            self.stdout.write(
                f"{candle_set.pair} {candle_set.timeframe}: {candle_set.records} candles, "
                f"{candle_set.start:%Y-%m-%d %H:%M} to {candle_set.end:%Y-%m-%d %H:%M} UTC (synthetic)"
            )
        elapsed = time.monotonic() - started
        if written:
            self.stdout.write(self.style.SUCCESS(f"Stored {len(written)} candle sets in {elapsed:.1f} s."))
        else:
            self.stdout.write(f"Demo candles already cover the range; nothing stored ({elapsed:.1f} s).")
