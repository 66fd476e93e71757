"""Strategy sources to upload, and an upload helper through the real API."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rest_framework.test import APIClient

# Seconds the dry load may take in these tests; freqtrade's import takes about 2 of them.
DRY_LOAD_SECONDS = 8


def strategy_text(name: str = "MyStrategy", *, prelude: str = "", timeframe: str = "15m", body: str = "") -> str:
    """A small, valid freqtrade strategy; ``prelude`` is module code run when freqtrade imports it."""
    return f'''{prelude}
from pandas import DataFrame

from freqtrade.strategy import DecimalParameter, IntParameter, IStrategy


class {name}(IStrategy):
    timeframe = "{timeframe}"
    minimal_roi = {{"0": 0.1}}
    stoploss = -0.1
    buy_rsi = IntParameter(10, 40, default=30, space="buy")
    sell_ratio = DecimalParameter(0.1, 0.9, decimals=1, default=0.5, space="sell")
{body}
    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
'''


def upload(
    client: APIClient,
    content: str | bytes,
    *,
    filename: str = "MyStrategy.py",
    parameters: str | bytes | None = None,
    **fields: Any,
) -> Any:
    data = content.encode() if isinstance(content, str) else content
    file = io.BytesIO(data)
    file.name = filename
    form: dict[str, Any] = {"file": file, **fields}
    if parameters is not None:
        params = io.BytesIO(parameters.encode() if isinstance(parameters, str) else parameters)
        params.name = "MyStrategy.json"
        form["parameters"] = params
    return client.post("/api/v1/strategies/upload", form, format="multipart")


@pytest.fixture(autouse=True)
def _strategy_settings(settings: Any) -> None:
    """A short dry-load limit, and room for many uploads an hour."""
    settings.STRATEGIES = {**settings.STRATEGIES, "dry_load_seconds": DRY_LOAD_SECONDS}
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "1000/hour"}
