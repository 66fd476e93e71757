"""freqtrade configs and strategies for tests that run the real freqtrade CLI on the replay exchange."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import freqtrade

from marketdata.replay_config import replay_exchange_section

SAMPLE_STRATEGY = Path(freqtrade.__file__).parent / "templates" / "sample_strategy.py"

# Enters on every candle and holds: a trade opens within the first loops of a dry-run bot.
ALWAYS_IN = """
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class AlwaysIn(IStrategy):
    timeframe = "1m"
    minimal_roi = {"0": 10.0}
    stoploss = -0.99
    startup_candle_count = 5
    process_only_new_candles = False

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
"""


def user_dir(root: Path) -> Path:
    """A freqtrade user_data directory with the sample strategy and AlwaysIn."""
    strategies = root / "strategies"
    strategies.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE_STRATEGY, strategies / "sample_strategy.py")
    (strategies / "always_in.py").write_text(ALWAYS_IN)
    return root


def write_config(path: Path, *, exchange_url: str, pairs: list[str], timeframe: str = "5m", **extra: Any) -> Path:
    config = {
        "max_open_trades": 3, "stake_currency": "USDT", "stake_amount": 100, "dry_run": True,
        "dry_run_wallet": 1000, "timeframe": timeframe, "trading_mode": "spot", "dataformat_ohlcv": "feather",
        "exchange": replay_exchange_section(pairs, exchange_url),
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "internals": {"process_throttle_secs": 2},
        "initial_state": "running",
        **extra,
    }  # fmt: skip
    path.write_text(json.dumps(config, indent=2))
    return path
