"""The replay market's clock and candles, with a controlled wall clock (no server, no processes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from marketdata.replay_market import DAY_MS, MINUTE_MS, ReplayError, ReplayMarket, make_clock
from marketdata.storage import store_candles

START = datetime(2026, 1, 1, tzinfo=UTC)


def minutes(first: datetime, count: int, price: float = 100.0, step: float = 1.0) -> pd.DataFrame:
    dates = pd.date_range(first, periods=count, freq="1min", tz=UTC)
    opens = [price + i * step for i in range(count)]
    closes = [value + step for value in opens]
    return pd.DataFrame({"date": dates, "open": opens, "high": closes, "low": opens, "close": closes,
                         "volume": [1.0] * count})  # fmt: skip


def market(tmp_path, frames: dict[str, pd.DataFrame], wall: list[float], on_end: str = "loop") -> ReplayMarket:
    for pair, frame in frames.items():
        store_candles(tmp_path, pair, "1m", frame)
    return ReplayMarket(tmp_path, anchor_file=tmp_path / "anchor.json", warmup_days=1, on_end=on_end,
                        clock=lambda: wall[0], reload_seconds=0)  # fmt: skip


def test_the_clock_starts_after_the_warmup_and_shifts_by_whole_days():
    anchor = int((START + timedelta(days=30, hours=5, minutes=7)).timestamp() * 1000)
    history_start = int(START.timestamp() * 1000)
    clock = make_clock(anchor=anchor, history_start=history_start, history_end=history_start + 10 * DAY_MS,
                       warmup_ms=DAY_MS, loop=True)  # fmt: skip
    assert history_start + DAY_MS <= clock.start < history_start + 2 * DAY_MS
    assert clock.shift % DAY_MS == 0
    later = anchor + 20 * DAY_MS + 123
    assert clock.wall_shift(later) % DAY_MS == 0 and clock.wall_shift(later) == later - clock.stored(later)


def test_in_stop_mode_the_market_stands_still_after_the_end(tmp_path):
    frame = minutes(START, 3 * 1440)
    wall = [(START + timedelta(days=40)).timestamp()]
    replay = market(tmp_path, {"BTC/USDT": frame}, wall, on_end="stop")
    replay.klines("BTCUSDT", "5m", limit=3)  # the replay starts (its anchor is now)
    wall[0] += 7 * 86400  # past the end of the three stored days
    first = replay.klines("BTCUSDT", "5m", limit=3)
    wall[0] += 7 * 86400 + 3.457  # a week and a bit later still
    second = replay.klines("BTCUSDT", "5m", limit=3)
    assert first == second  # same candles, same (minute-aligned) times
    assert all(row[0] % (5 * MINUTE_MS) == 0 for row in second)
    assert replay.last_price("BTCUSDT") == pytest.approx(frame["close"].iloc[-1])


def test_a_candle_in_progress_never_shows_the_minutes_after_a_gap(tmp_path):
    before = minutes(START, 1440 + 600, price=100.0, step=0.0)
    after = minutes(START + timedelta(days=1, hours=10, minutes=30), 600, price=29_500.0, step=0.0)
    frame = pd.concat([before, after], ignore_index=True)
    wall = [0.0]
    replay = market(tmp_path, {"BTC/USDT": frame}, wall)
    replay.refresh(force=True)
    clock = replay.clock
    # Put the replay at stored day 1 10:10, inside the 10:00-10:30 gap (the anchor at 00:00 starts it at day 1).
    target = int((START + timedelta(days=1, hours=10, minutes=10)).timestamp() * 1000)
    assert clock.start <= target
    wall[0] = (target + clock.shift) / 1000
    hour = replay.klines("BTCUSDT", "1h", limit=1)[0]
    assert float(hour[1]) == 100.0 and float(hour[2]) == 100.0  # nothing from 10:30 onwards
    assert replay.last_price("BTCUSDT") == 100.0


def test_a_pair_whose_history_has_not_begun_has_no_price_yet(tmp_path):
    early = minutes(START, 20 * 1440)
    late = minutes(START + timedelta(days=25), 1440, price=5000.0)
    wall = [(START + timedelta(days=3)).timestamp()]
    replay = market(tmp_path, {"BTC/USDT": early, "ETH/USDT": late}, wall)
    with pytest.raises(ReplayError):
        replay.last_price("ETHUSDT")
    assert replay.reference_price("ETHUSDT") == 5000.0  # only for sizing the filters


def test_new_candles_do_not_move_the_replay(tmp_path):
    wall = [(START + timedelta(days=10, hours=3)).timestamp()]
    replay = market(tmp_path, {"BTC/USDT": minutes(START, 10 * 1440)}, wall)
    playing = replay.stored_now()
    start = replay.clock.start
    # An upload extends the history backwards by five days.
    store_candles(tmp_path, "BTC/USDT", "1m", minutes(START - timedelta(days=5), 15 * 1440, price=50.0))
    replay.refresh(force=True)
    # then: the same stored moment plays at the same wall time
    assert replay.clock.start == start
    assert replay.stored_now() == playing
