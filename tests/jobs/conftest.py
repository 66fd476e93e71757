"""Fixtures of the job tests: stored candles, the replay exchange that serves their markets, a strategy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings

from marketdata.models import CandleSet
from marketdata.storage import resample
from strategies.library import library_dir
from tests.support.market import store_history
from tests.support.replay import replay_exchange

# Crosses of two short moving averages: on the random walk of tests.support.market it trades often.
CROSSING = """
import talib.abstract as ta
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class Crossing(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.02}
    stoploss = -0.03
    startup_candle_count = 30

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["fast"] = ta.EMA(dataframe, timeperiod=5)
        dataframe["slow"] = ta.EMA(dataframe, timeperiod=20)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        up = (dataframe["fast"] > dataframe["slow"]) & (dataframe["fast"].shift(1) <= dataframe["slow"].shift(1))
        dataframe.loc[up, "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        down = (dataframe["fast"] < dataframe["slow"]) & (dataframe["fast"].shift(1) >= dataframe["slow"].shift(1))
        dataframe.loc[down, "exit_long"] = 1
        return dataframe
"""
HISTORY_DAYS = 20


def history_end() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def timerange(days: int = 3, *, ago: int = 1) -> str:
    """A short timerange inside the stored history: ``days`` days ending ``ago`` days before its end."""
    end = history_end() - timedelta(days=ago)
    return f"{end - timedelta(days=days):%Y%m%d}-{end:%Y%m%d}"


@pytest.fixture(scope="session")
def history() -> dict[str, pd.DataFrame]:
    """20 days of 1m and 5m candles of BTC/USDT and ETH/USDT in this test run's own home."""
    return store_history(Path(settings.MARKETDATA["dir"]) / "replay", days=HISTORY_DAYS, end=history_end())


@pytest.fixture(scope="session")
def replay_url(history: dict[str, pd.DataFrame]) -> Iterator[str]:
    with replay_exchange(Path(settings.HOME)) as url:
        yield url


@pytest.fixture
def candle_sets(history: dict[str, pd.DataFrame], db: Any) -> None:
    """The stored candles recorded (CandleSet rows), as an upload would."""
    for pair, frame in history.items():
        for timeframe, candles in (("1m", frame), ("5m", resample(frame, "5m"))):
            CandleSet.objects.update_or_create(
                exchange="replay", pair=pair, timeframe=timeframe,
                defaults={"start": candles["date"].iloc[0], "end": candles["date"].iloc[-1],
                          "records": len(candles), "source": CandleSet.Source.UPLOAD},
            )  # fmt: skip


@pytest.fixture
def market(replay_url: str, candle_sets: None, settings: Any) -> str:
    """Recorded candles and the replay exchange that serves their markets, its address in settings."""
    settings.REPLAY_EXCHANGE_URL = replay_url
    return replay_url


@pytest.fixture(scope="session")
def crossing_strategy() -> Path:
    path = library_dir() / "crossing.py"
    path.write_text(CROSSING)
    return path
