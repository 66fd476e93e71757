"""The market source of this process: the replay market over the stored candles, shared and kept fresh."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.conf import settings

from marketdata.replay_market import ReplayError, ReplayMarket
from marketdata.services import exchange_dir


def replay_market() -> ReplayMarket:
    """The same clock as the replay exchange process: both read the anchor under MULTIBOT_HOME."""
    conf = settings.REPLAY
    return _market(exchange_dir("replay"), conf["anchor_file"], conf["warmup_days"], conf["on_end"])


@functools.cache
def _market(datadir: Path, anchor_file: Path, warmup_days: float, on_end: str) -> ReplayMarket:
    # One per configuration, kept: it holds the candles in memory and reloads them when files change.
    return ReplayMarket(datadir, anchor_file=anchor_file, warmup_days=warmup_days, on_end=on_end)


def market_overview() -> dict[str, dict[str, Any]]:
    """Last price, 24h change (%) and 24h quote volume of every stored pair, as the replay plays it now."""
    market = replay_market()
    try:
        pairs = market.symbols()
    except ReplayError:
        return {}
    overview = {}
    for candles in pairs:
        stats = market.ticker_24h(candles.symbol)
        overview[candles.pair.replace("/", "_").lower()] = {
            "pair": candles.pair,
            "price": stats["last"],
            "change_24h": round(stats["change_percent"], 4),
            "volume_24h": round(stats["quote_volume"], 2),
            "high_24h": stats["high"],
            "low_24h": stats["low"],
        }
    return overview
