"""The replay market: stored candles played back as a live market, on the wall clock.

Time: the market's "now" is stored time shifted to the wall clock. At the first start an anchor
(the wall time then) is kept; from it, stored time = ``start + (wall - anchor) mod loop`` where
``start`` leaves ``warmup`` of history before it (indicators need it) and the shift is a whole
number of days, so every candle boundary up to 1d stays aligned. When the history runs out the
replay loops (``on_end="loop"``) or stands still at its last candle (``on_end="stop"``).

Candles: the 1m candles of each pair are the base. A candle of any timeframe is complete once its
last minute has closed; the candle in progress is built from the minutes closed so far, so no
served value comes from the future. The last price is the close of the last closed minute.
No Django here: the server and the tests use it directly.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from marketdata.vocabulary import (
    DAY_SECONDS,
    REPLAY_BASE_TIMEFRAME,
    REPLAY_TIMEFRAMES,
    is_spot_pair,
    pair_from_file_stem,
    timeframe_ms,
)

MINUTE_MS = timeframe_ms(REPLAY_BASE_TIMEFRAME)  # the base candle: one minute
DAY_MS = DAY_SECONDS * 1000
TIMEFRAME_MS = {timeframe: timeframe_ms(timeframe) for timeframe in REPLAY_TIMEFRAMES}
_FILE_SUFFIX = f"-{REPLAY_BASE_TIMEFRAME}.feather"


class ReplayError(Exception):
    """A request the market cannot answer; ``code`` and ``msg`` follow Binance's error format."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


@dataclass
class PairCandles:
    """One pair's 1m candles as arrays; times are stored open times in epoch milliseconds."""

    pair: str
    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def symbol(self) -> str:
        return self.pair.replace("/", "")  # Binance's symbol

    @classmethod
    def from_frame(cls, pair: str, frame: pd.DataFrame) -> PairCandles:
        frame = frame.sort_values("date")
        # pandas keeps whatever resolution the file had (ns, us, ...): ask for milliseconds.
        times = pd.to_datetime(frame["date"], utc=True).dt.as_unit("ms").astype("int64").to_numpy()
        return cls(
            pair=pair, time=times.astype(np.int64),
            open=frame["open"].to_numpy(float), high=frame["high"].to_numpy(float),
            low=frame["low"].to_numpy(float), close=frame["close"].to_numpy(float),
            volume=frame["volume"].to_numpy(float),
        )  # fmt: skip


@dataclass(frozen=True)
class Clock:
    """Maps wall time to stored time (both epoch ms) for one history and one anchor."""

    anchor: int  # wall time of the replay's first start
    start: int  # stored time the replay started at
    end: int  # stored time after the last stored minute
    loop: bool

    @property
    def shift(self) -> int:
        """wall - stored, at the first pass (a whole number of days)."""
        return self.anchor - self.start

    @property
    def length(self) -> int:
        """Playable stored time per pass, whole days so that every pass keeps candles aligned."""
        return max(DAY_MS, (self.end - self.start) // DAY_MS * DAY_MS)

    def stored(self, wall: int) -> int:
        """The stored time that plays at wall time ``wall``."""
        elapsed = wall - self.anchor
        if elapsed < 0:
            return self.start + elapsed  # before the anchor: the warmup, played as past
        if self.loop:
            return self.start + elapsed % self.length
        return min(self.start + elapsed, self.end)

    def wall_shift(self, wall: int) -> int:
        """wall - stored for the pass that ``wall`` belongs to (whole days either way)."""
        if not self.loop or wall < self.anchor:
            return self.shift  # one pass: after the end the market stands still, the shift does not move
        return self.shift + (wall - self.anchor) // self.length * self.length


def make_clock(*, anchor: int, history_start: int, history_end: int, warmup_ms: int, loop: bool) -> Clock:
    # Start as early as the warmup allows, at the anchor's time of day (the shift is whole days).
    earliest = history_start + warmup_ms
    days = math.floor((anchor - earliest) / DAY_MS)
    start = anchor - days * DAY_MS
    if start >= history_end:
        raise ReplayError(-1, "the stored history is shorter than the warmup", status=503)
    return Clock(anchor=anchor, start=start, end=history_end, loop=loop)


class ReplayMarket:
    """The market: loaded candles, the clock, and answers in plain Python values."""

    def __init__(
        self,
        datadir: Path,
        *,
        anchor_file: Path,
        warmup_days: float = 14,
        on_end: str = "loop",
        clock: Callable[[], float] = time.time,
        reload_seconds: float = 10.0,
    ) -> None:
        self.datadir, self.anchor_file = Path(datadir), Path(anchor_file)
        self.warmup_ms, self.loop = int(warmup_days * DAY_MS), on_end == "loop"
        self.wall_clock, self.reload_seconds = clock, reload_seconds
        self._lock = threading.Lock()
        self._signature: tuple = ()
        self._checked_at = 0.0
        self.pairs: dict[str, PairCandles] = {}
        self._aggregates: dict[tuple[str, str], tuple[np.ndarray, ...]] = {}
        self.clock: Clock | None = None

    # -- data ------------------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        return sorted(self.datadir.glob(f"*{_FILE_SUFFIX}"))

    def refresh(self, force: bool = False) -> None:
        """Reload when the stored 1m files changed (checked every ``reload_seconds``)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.reload_seconds and self.pairs:
            return
        self._checked_at = now
        files = self._files()
        signature = tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in files)
        if signature == self._signature and not force:
            return
        pairs = {}
        for path in files:
            pair = pair_from_file_stem(path.name.removesuffix(_FILE_SUFFIX))
            if not is_spot_pair(pair):
                continue  # not a candle file of a spot pair: no market of ours
            frame = pd.read_feather(path)
            if not frame.empty:
                pairs[pair] = PairCandles.from_frame(pair, frame)
        with self._lock:
            self.pairs, self._aggregates, self._signature = pairs, {}, signature
            self.clock = self._make_clock() if pairs else None

    def _kept(self) -> dict[str, int]:
        try:
            return {key: int(value) for key, value in json.loads(self.anchor_file.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _keep(self, **values: int) -> None:
        self.anchor_file.parent.mkdir(parents=True, exist_ok=True)
        self.anchor_file.write_text(json.dumps(values))

    def _make_clock(self) -> Clock:
        """The clock of the first start, kept across restarts and data changes (an upload or an
        extension of the demo data must not make every bot's market jump)."""
        history_start = min(int(candles.time[0]) for candles in self.pairs.values())
        history_end = max(int(candles.time[-1]) for candles in self.pairs.values()) + MINUTE_MS
        kept = self._kept()
        anchor = kept.get("anchor_ms") or int(self.wall_clock() * 1000) // MINUTE_MS * MINUTE_MS
        start = kept.get("start_ms")
        if start is not None and history_start <= start < history_end:
            clock = Clock(anchor=anchor, start=start, end=history_end, loop=self.loop)
        else:
            clock = make_clock(anchor=anchor, history_start=history_start, history_end=history_end,
                               warmup_ms=self.warmup_ms, loop=self.loop)  # fmt: skip
        if kept != {"anchor_ms": anchor, "start_ms": clock.start}:
            self._keep(anchor_ms=anchor, start_ms=clock.start)
        return clock

    def _ready(self) -> Clock:
        self.refresh()
        if self.clock is None:
            raise ReplayError(-1, "no market data stored", status=503)
        return self.clock

    def candles(self, symbol: str) -> PairCandles:
        self._ready()
        for candles in self.pairs.values():
            if candles.symbol == symbol:
                return candles
        raise ReplayError(-1121, "Invalid symbol.")

    # -- time ------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.wall_clock() * 1000)

    def stored_now(self) -> int:
        return self._ready().stored(self.now_ms())

    # -- candles ---------------------------------------------------------------------------------
    def _aggregate(self, candles: PairCandles, timeframe: str) -> tuple[np.ndarray, ...]:
        """Complete-or-not candles of a timeframe over the whole history (cached per pair)."""
        key = (candles.symbol, timeframe)
        cached = self._aggregates.get(key)
        if cached is not None:
            return cached
        period = TIMEFRAME_MS[timeframe]
        buckets = candles.time // period * period
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        ends = np.r_[starts[1:], len(buckets)] - 1
        result = (
            buckets[starts],
            candles.open[starts],
            np.maximum.reduceat(candles.high, starts),
            np.minimum.reduceat(candles.low, starts),
            candles.close[ends],
            np.add.reduceat(candles.volume, starts),
            starts,
        )
        self._aggregates[key] = result
        return result

    def klines(
        self, symbol: str, interval: str, *, start: int | None = None, end: int | None = None, limit: int = 500
    ) -> list[list]:
        """Binance klines in wall time: complete candles, then the one in progress built from closed minutes."""
        if interval not in TIMEFRAME_MS:
            raise ReplayError(-1120, "Invalid interval.")
        candles = self.candles(symbol)
        clock, now = self._ready(), self.now_ms()
        period = TIMEFRAME_MS[interval]
        shift = clock.wall_shift(now)
        stored_now = clock.stored(now)
        times, opens, highs, lows, closes, volumes, first_minute = self._aggregate(candles, interval)
        # Wall-time window, clipped to now; then mapped to stored time for this pass.
        last_open = (end if end is not None else now) - shift
        last_open = min(last_open, stored_now)
        first_open = (start - shift) if start is not None else None
        hi = int(np.searchsorted(times, last_open, side="right"))
        lo = max(0, hi - limit) if first_open is None else int(np.searchsorted(times, first_open, side="left"))
        hi = min(hi, lo + limit)
        rows = []
        for index in range(lo, hi):
            open_time = int(times[index])
            if open_time + period <= stored_now:
                row = (opens[index], highs[index], lows[index], closes[index], volumes[index])
            else:
                row = self._partial(candles, int(first_minute[index]), open_time, stored_now)
            rows.append(_kline(open_time + shift, period, *row))
        return rows

    def _partial(self, candles: PairCandles, first: int, open_time: int, stored_now: int) -> tuple[float, ...]:
        """The candle in progress: the minutes that have closed by ``stored_now``, else just its open."""
        stop = int(np.searchsorted(candles.time, stored_now - MINUTE_MS, side="right"))
        if stop <= first:
            # No minute of it has closed. Its open is known only if its first stored minute has begun;
            # after a gap in the data that minute may lie ahead: then the last closed price stands.
            if candles.time[first] <= stored_now:
                price = candles.open[first]
            else:
                price = candles.close[stop - 1] if stop > 0 else candles.open[first]
            return (price, price, price, price, 0.0)
        window = slice(first, stop)
        return (
            candles.open[first], float(candles.high[window].max()), float(candles.low[window].min()),
            candles.close[stop - 1], float(candles.volume[window].sum()),
        )  # fmt: skip

    # -- prices ----------------------------------------------------------------------------------
    def last_index(self, candles: PairCandles) -> int:
        """Index of the last closed minute (the market's last trade), -1 before the history starts."""
        return int(np.searchsorted(candles.time, self.stored_now() - MINUTE_MS, side="right")) - 1

    def last_price(self, symbol: str) -> float:
        """The close of the last closed minute; a pair whose history has not begun has no price yet."""
        candles = self.candles(symbol)
        index = self.last_index(candles)
        if index < 0:
            raise ReplayError(-1, f"{symbol} has no trades yet at this point of the replay", status=503)
        return float(candles.close[index])

    def reference_price(self, symbol: str) -> float:
        """A price to size tick and lot filters with, also before the pair's history begins."""
        candles = self.candles(symbol)
        index = self.last_index(candles)
        return float(candles.close[index] if index >= 0 else candles.open[0])

    def ticker_24h(self, symbol: str) -> dict[str, float | int]:
        candles = self.candles(symbol)
        now = self.now_ms()
        stored_now = self.stored_now()
        last = self.last_index(candles)
        first = int(np.searchsorted(candles.time, stored_now - DAY_MS, side="left"))
        if last < 0:
            raise ReplayError(-1, f"no candles for {symbol} yet", status=503)
        first = min(first, last)
        window = slice(first, last + 1)
        volume = float(candles.volume[window].sum())
        quote_volume = float((candles.volume[window] * candles.close[window]).sum())
        open_price, last_price = float(candles.open[first]), float(candles.close[last])
        return {
            "open": open_price, "high": float(candles.high[window].max()), "low": float(candles.low[window].min()),
            "last": last_price, "volume": volume, "quote_volume": quote_volume,
            "change": last_price - open_price,
            "change_percent": (last_price / open_price - 1) * 100 if open_price else 0.0,
            "weighted_avg": quote_volume / volume if volume else last_price,
            "open_time": now - DAY_MS, "close_time": now, "count": last - first + 1,
        }  # fmt: skip

    def symbols(self) -> list[PairCandles]:
        self._ready()
        return list(self.pairs.values())


def _kline(open_time: int, period: int, o: float, h: float, low: float, c: float, v: float) -> list:
    quote = v * c
    return [
        open_time, _num(o), _num(h), _num(low), _num(c), _num(v), open_time + period - 1, _num(quote),
        max(1, int(v * 7) % 5000), _num(v / 2), _num(quote / 2), "0",
    ]  # fmt: skip


def _num(value: float) -> str:
    return f"{float(value):.8f}"
