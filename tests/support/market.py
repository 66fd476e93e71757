"""Small, deterministic candle histories for replay-exchange tests (not the demo generator)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from marketdata.storage import resample, store_candles

PAIRS = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0}


def minute_candles(base_price: float, *, days: int, end: datetime, seed: int) -> pd.DataFrame:
    """A random walk with a slow wave, so strategies see swings; open = previous close."""
    minutes = days * 1440
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.0009, minutes) + 0.004 * np.sin(np.arange(minutes) / 45.0) / 45.0
    closes = base_price * np.exp(np.cumsum(steps))
    opens = np.r_[base_price, closes[:-1]]
    wiggle = np.abs(rng.normal(0, 0.0004, minutes))
    highs = np.maximum(opens, closes) * (1 + wiggle)
    lows = np.minimum(opens, closes) * (1 - wiggle)
    volume = 5 + 200 * np.abs(steps) * 1000 * rng.uniform(0.5, 1.5, minutes)
    start = end - timedelta(days=days)
    dates = pd.date_range(start, periods=minutes, freq="1min", tz=UTC)
    return pd.DataFrame({"date": dates, "open": opens, "high": highs, "low": lows, "close": closes, "volume": volume})


def store_history(datadir: Path, *, days: int = 20, end: datetime | None = None) -> dict[str, pd.DataFrame]:
    """1m and 5m files for PAIRS under ``datadir``; returns the 1m frames."""
    end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    frames = {}
    for seed, (pair, price) in enumerate(PAIRS.items()):
        frame = minute_candles(price, days=days, end=end, seed=seed)
        store_candles(datadir, pair, "1m", frame)
        store_candles(datadir, pair, "5m", resample(frame, "5m"))
        frames[pair] = frame
    return frames
