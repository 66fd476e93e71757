"""The market source of this process: the replay market over the stored candles, shared and kept fresh."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings

from marketdata.replay_market import ReplayError, ReplayMarket
from marketdata.services import exchange_dir


@functools.cache
def replay_market() -> ReplayMarket:
    """The same clock as the replay exchange process: both read the anchor under MULTIBOT_HOME."""
    conf = settings.REPLAY
    return ReplayMarket(
        exchange_dir("replay"), anchor_file=conf["anchor_file"], warmup_days=conf["warmup_days"], on_end=conf["on_end"]
    )


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
