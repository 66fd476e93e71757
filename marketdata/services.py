"""Writing candles: merge with what is stored, replace the file atomically, keep the CandleSet row in step."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import events
from audit.services import Actor
from marketdata import demo
from marketdata.models import CandleSet
from marketdata.storage import candle_path, load_candles, merge_candles, resample, staged_candles
from marketdata.vocabulary import TIMEFRAME_SECONDS


def exchange_dir(exchange: str = "replay") -> Path:
    return Path(settings.MARKETDATA["dir"]) / exchange


def candles_save(
    *,
    pair: str,
    timeframe: str,
    frame: pd.DataFrame,
    source: str,
    synthetic: bool,
    exchange: str = "replay",
    actor: Actor | None = None,
    replace: bool = False,
) -> tuple[CandleSet, dict[str, Any]]:
    """Store candles for one pair and timeframe, merged with the stored ones unless ``replace``.

    Returns the CandleSet and what changed (``added``, ``updated``, ``records``). The file is
    replaced as the last step inside the transaction: if that fails, the row rolls back with it. The
    row carries the new file's sha256 and size, computed from the staged file before it is renamed.
    """
    if frame.empty:
        raise ValueError("no candles to store")
    datadir = exchange_dir(exchange)
    with transaction.atomic():
        candle_set, created = CandleSet.objects.select_for_update().get_or_create(
            exchange=exchange, pair=pair, timeframe=timeframe,
            defaults={"start": frame["date"].iloc[0], "end": frame["date"].iloc[-1], "records": 0,
                      "source": source, "synthetic": synthetic},
        )  # fmt: skip
        # Read under the row lock: two uploads of one pair merge one after the other.
        existing = pd.DataFrame() if replace else load_candles(datadir, pair, timeframe)
        overlap = 0 if existing.empty else int(frame["date"].isin(existing["date"]).sum())
        merged = frame if existing.empty else merge_candles(existing, frame)
        changes = {"added": len(frame) - overlap, "updated": overlap, "records": len(merged)}
        candle_set.start, candle_set.end = merged["date"].iloc[0], merged["date"].iloc[-1]
        candle_set.records = len(merged)
        candle_set.source = source
        # Real candles merged into a synthetic set do not make it real: synthetic if any part is.
        candle_set.synthetic = synthetic if (created or replace) else (candle_set.synthetic or synthetic)
        with staged_candles(datadir, pair, timeframe, merged) as staged:
            # The checksum of the file about to replace the old one: workers elsewhere verify what they fetch by it.
            candle_set.sha256, candle_set.size = staged.sha256, staged.size
            candle_set.save()
            if actor is not None:
                events.candles_uploaded_event(actor=actor, exchange=exchange, pair=pair, timeframe=timeframe,
                                              source=source, changes=changes)  # fmt: skip
    return candle_set, changes


# 1m is what the replay exchange plays (every timeframe it serves is built from it); the others are what
# backtests and FreqAI trainings read from files, resampled from the same 1m candles: 5m, the usual strategy
# timeframe, and what freqtrade's FreqAI examples add as include_timeframes (its documentation: 5m, 15m, 4h;
# its config_freqai.example.json: 3m, 15m, 1h), so a FreqAI model set up as they show trains on the demo data.
DEMO_TIMEFRAMES = ("1m", "3m", "5m", "15m", "1h", "4h")


def demo_data_ensure(
    *,
    days: int = 60,
    end: datetime | None = None,
    pairs: Iterable[str] = tuple(demo.DEMO_PAIRS),
    seed: int = demo.DEFAULT_SEED,
    regenerate: bool = False,
) -> list[CandleSet]:
    """Synthetic candles of the demo pairs (``DEMO_TIMEFRAMES``) over the ``days`` whole UTC days before ``end``.

    ``end`` defaults to today 00:00 UTC (a later ``end`` is floored to its day): the data reaches the last
    complete day, so a replay plays recent-looking history, and a run on a later day extends it forward.
    A set that already covers the range is left alone, so a second ``make run`` writes nothing. A demo set
    covering part of it is extended: the generator gives the same candles for the same minutes whatever
    the range, so the overlap must agree; if it does not (another seed) or there is no overlap, the set is
    replaced by the range. ``regenerate`` replaces every demo set by exactly the range. A set whose latest
    candles came from elsewhere (an upload) is never touched. The longer timeframes are the resampled 1m
    candles; a timeframe added to ``DEMO_TIMEFRAMES`` later is written on the next run beside the stored ones.
    Returns the sets written.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    pairs = list(pairs)
    unknown = [pair for pair in pairs if pair not in demo.DEMO_PAIRS]
    if unknown:
        raise ValueError(f"no demo model for {', '.join(unknown)}; known: {', '.join(demo.DEMO_PAIRS)}")
    end = _day_start(end if end is not None else timezone.now())
    start = end - timedelta(days=days)
    written = []
    for pair in pairs:
        stored = {cs.timeframe: cs for cs in CandleSet.objects.filter(exchange="replay", pair=pair)}
        todo = [
            tf for tf in DEMO_TIMEFRAMES
            if _demo_may_write(stored.get(tf)) and (regenerate or not _covers(stored.get(tf), start, end))
        ]  # fmt: skip
        if not todo:
            continue
        minutes = demo.generate(pair, start, end, seed)
        for timeframe in todo:
            frame = minutes if timeframe == "1m" else resample(minutes, timeframe)
            existing = load_candles(exchange_dir(), pair, timeframe) if timeframe in stored else pd.DataFrame()
            replace = regenerate or not _agrees_on_overlap(existing, frame)
            candle_set, _ = candles_save(
                pair=pair, timeframe=timeframe, frame=frame, source=CandleSet.Source.DEMO, synthetic=True,
                replace=replace,
            )  # fmt: skip
            written.append(candle_set)
    return written


def _day_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _demo_may_write(candle_set: CandleSet | None) -> bool:
    return candle_set is None or candle_set.source == CandleSet.Source.DEMO


def _covers(candle_set: CandleSet | None, start: datetime, end: datetime) -> bool:
    if candle_set is None:
        return False
    last = end - timedelta(seconds=TIMEFRAME_SECONDS[candle_set.timeframe])
    on_disk = candle_path(exchange_dir(candle_set.exchange), candle_set.pair, candle_set.timeframe).exists()
    return on_disk and candle_set.start <= start and candle_set.end >= last


def _agrees_on_overlap(existing: pd.DataFrame, frame: pd.DataFrame) -> bool:
    """True when the stored candles share some dates with ``frame`` and are equal there."""
    if existing.empty:
        return False
    both = existing.merge(frame, on="date", suffixes=("_stored", ""))
    if both.empty:
        return False
    columns = ["open", "high", "low", "close", "volume"]
    return bool((both[[f"{c}_stored" for c in columns]].to_numpy() == both[columns].to_numpy()).all())
