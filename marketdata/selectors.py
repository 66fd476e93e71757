"""Reading what candles are stored. Market data is shared by every user: nothing here is scoped to one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from django.db.models import QuerySet

from marketdata.models import CandleSet
from marketdata.services import exchange_dir
from marketdata.storage import StorageError, candle_path, load_candles
from marketdata.vocabulary import REPLAY_BASE_TIMEFRAME, pair_from_input, parse_pair


def candle_set_list() -> QuerySet[CandleSet]:
    return CandleSet.objects.order_by("exchange", "pair", "timeframe")


def candle_set_get(*, pair: str, timeframe: str, exchange: str = "replay") -> CandleSet | None:
    """The set for ``BTC/USDT`` or ``BTC_USDT``, or None when nothing is stored for it."""
    return candle_set_list().filter(exchange=exchange, pair=pair_from_input(pair), timeframe=timeframe).first()


def candle_set_file(candle_set: CandleSet) -> Path:
    """Where this host keeps the set's file (it may be missing: a worker on another host fetches it)."""
    return candle_path(exchange_dir(candle_set.exchange), candle_set.pair, candle_set.timeframe)


def candle_set_frame(candle_set: CandleSet) -> pd.DataFrame:
    """The stored candles of a set, oldest first; StorageError when its file is missing or unreadable."""
    datadir = exchange_dir(candle_set.exchange)
    if not candle_path(datadir, candle_set.pair, candle_set.timeframe).exists():
        raise StorageError(f"the candle file of {candle_set} is missing")
    return load_candles(datadir, candle_set.pair, candle_set.timeframe)


def replay_market_pairs(*, quote: str | None = None) -> list[str]:
    """The replay exchange's markets (spot pairs whose 1m candles are stored), sorted; only ``quote``'s if given."""
    stored = candle_set_list().filter(exchange="replay", timeframe=REPLAY_BASE_TIMEFRAME).values_list("pair", flat=True)
    parsed = [pair for pair in map(parse_pair, stored) if pair is not None and pair.is_spot]
    return sorted({str(pair) for pair in parsed if quote is None or pair.quote == quote})
