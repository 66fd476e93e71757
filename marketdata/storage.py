"""Candles on disk in freqtrade's own layout and format, so ``freqtrade backtesting`` reads them as they are.

``<MULTIBOT_HOME>/data/<exchange>/<BASE>_<QUOTE>-<timeframe>.feather`` with the columns
date (UTC), open, high, low, close, volume: written by freqtrade's FeatherDataHandler itself. A write
goes to a staging file first and replaces the old file in one rename: readers never see half a file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from marketdata.vocabulary import TIMEFRAME_SECONDS, parse_pair

COLUMNS = ["date", "open", "high", "low", "close", "volume"]


class StorageError(Exception):
    """Candles could not be read or written."""


def _handler(datadir: Path):
    # freqtrade is heavy to import: only here, when candles are really read or written this way.
    from freqtrade.data.history.datahandlers import get_datahandler

    return get_datahandler(datadir, "feather")


def candle_path(datadir: Path, pair: str, timeframe: str) -> Path:
    """freqtrade's file name for a spot pair: ``BTC/USDT`` 5m -> ``BTC_USDT-5m.feather``."""
    parsed = parse_pair(pair)
    if parsed is None or not parsed.is_spot:
        raise StorageError(f"{pair!r} is not a spot pair; only spot candles are stored")
    return Path(datadir) / f"{parsed.file_stem}-{timeframe}.feather"


def empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in COLUMNS})
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
    return frame


def load_candles(datadir: Path, pair: str, timeframe: str) -> pd.DataFrame:
    path = candle_path(datadir, pair, timeframe)
    if not path.exists():
        return empty_frame()
    try:
        frame = pd.read_feather(path)
    except Exception as exc:
        raise StorageError(f"cannot read {path.name}: {exc}") from exc
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
    return frame.loc[:, COLUMNS]


def merge_candles(existing: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union by date; where both have a candle, the new one wins. Sorted, unique dates."""
    merged = pd.concat([existing, new], ignore_index=True)
    merged = merged.drop_duplicates(subset="date", keep="last").sort_values("date")
    return merged.reset_index(drop=True)


def file_checksum(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and the size of a file's bytes."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class StagedCandles:
    """A complete candle file not yet in place, and its checksum."""

    path: Path
    sha256: str
    size: int


@contextmanager
def staged_candles(datadir: Path, pair: str, timeframe: str, frame: pd.DataFrame) -> Iterator[StagedCandles]:
    """Write through freqtrade's handler into a staging directory; the file is renamed into place when the
    block ends without an error, so what the block records (the row's checksum) describes the file that lands."""
    datadir = Path(datadir)
    final = candle_path(datadir, pair, timeframe)
    staging = datadir / ".staging" / uuid.uuid4().hex
    staging.mkdir(parents=True, exist_ok=True)
    try:
        from freqtrade.enums import CandleType

        _handler(staging).ohlcv_store(pair, timeframe, frame.loc[:, COLUMNS], CandleType.SPOT)
        written = candle_path(staging, pair, timeframe)
        if not written.exists():
            raise StorageError(f"freqtrade did not write {written.name}")
        written.chmod(0o600)
        yield StagedCandles(written, *file_checksum(written))
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(written, final)
    finally:
        for leftover in staging.glob("*"):
            leftover.unlink()
        staging.rmdir()


def store_candles(datadir: Path, pair: str, timeframe: str, frame: pd.DataFrame) -> Path:
    """Write through freqtrade's handler into a staging directory, then rename into place."""
    with staged_candles(datadir, pair, timeframe, frame):
        pass
    return candle_path(datadir, pair, timeframe)


def resample(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate candles (e.g. 1m) into a longer timeframe: first open, max high, min low, last close, summed volume."""
    seconds = TIMEFRAME_SECONDS[timeframe]
    grouped = frame.set_index("date").resample(f"{seconds}s", label="left", closed="left")
    result = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return result.dropna(subset=["open"]).reset_index()
