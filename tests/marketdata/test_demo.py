"""The demo candle generator, the service that stores its candles, the command and the bootstrap step."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from marketdata.demo import DEFAULT_SEED, DEMO_PAIRS, generate
from marketdata.models import CandleSet
from marketdata.services import DEMO_TIMEFRAMES, candles_save, demo_data_ensure
from marketdata.storage import candle_path, load_candles, resample
from marketdata.vocabulary import TIMEFRAME_SECONDS
from tests.support.freqtrade import user_dir, write_config
from tests.support.processes import ROOT, free_port, server_env, wait_for

END = datetime(2026, 3, 1, tzinfo=UTC)
VALUES = ["open", "high", "low", "close", "volume"]


@pytest.fixture
def datadir(settings, tmp_path) -> Path:
    """Where the demo candles go: settings.MARKETDATA["dir"]/replay, private to the test."""
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "data"}
    return tmp_path / "data" / "replay"


def _stamps(datadir: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in datadir.glob("*.feather")}


def test_the_same_inputs_give_the_same_candles_and_another_seed_other_ones():
    start = END - timedelta(days=2)

    first = generate("BTC/USDT", start, END, seed=7)
    again = generate("BTC/USDT", start, END, seed=7)
    other = generate("BTC/USDT", start, END, seed=8)

    pd.testing.assert_frame_equal(first, again)
    assert first[VALUES].to_numpy().tobytes() == again[VALUES].to_numpy().tobytes()
    assert (first["date"] == other["date"]).all()
    assert (first["close"] != other["close"]).mean() > 0.99


def test_each_pair_has_its_own_market_near_its_typical_price():
    start = END - timedelta(days=1)

    closes = {pair: generate(pair, start, END)["close"] for pair in DEMO_PAIRS}

    assert sorted(DEMO_PAIRS) == ["BNB/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT"]
    for pair, close in closes.items():
        assert DEMO_PAIRS[pair].price / 3 < close.median() < DEMO_PAIRS[pair].price * 3, pair
    returns = pd.DataFrame({pair: np.log(close).diff() for pair, close in closes.items()})
    assert returns.corr().abs().to_numpy()[np.triu_indices(4, 1)].max() < 0.2


def test_a_longer_or_shifted_range_repeats_the_overlapping_candles_exactly():
    short = generate("ETH/USDT", END - timedelta(days=3), END)

    later = generate("ETH/USDT", END - timedelta(days=2, hours=5, minutes=17), END + timedelta(days=4))
    earlier = generate("ETH/USDT", END - timedelta(days=9), END - timedelta(days=1))

    for other in (later, earlier):
        both = short.merge(other, on="date", suffixes=("", "_other"))
        assert len(both) >= 2 * 1440
        for column in VALUES:
            assert (both[column] == both[f"{column}_other"]).all(), column


def test_the_minutes_follow_each_other_without_gaps_and_each_candle_is_consistent():
    start = END - timedelta(days=3)

    candles = generate("SOL/USDT", start, END)

    assert list(candles.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert str(candles["date"].dt.tz) == "UTC"
    assert len(candles) == 3 * 1440
    assert candles["date"].iloc[0] == start and candles["date"].iloc[-1] == END - timedelta(minutes=1)
    assert (candles["date"].diff().dropna() == timedelta(minutes=1)).all()
    assert (candles["open"].iloc[1:].to_numpy() == candles["close"].iloc[:-1].to_numpy()).all()
    assert (candles["high"] >= candles[["open", "close"]].max(axis=1)).all()
    assert (candles["low"] <= candles[["open", "close"]].min(axis=1)).all()
    assert (candles["low"] > 0).all()
    assert (candles["high"] > candles["low"]).mean() > 0.99


def test_volatility_regimes_and_trends_over_days_show_in_the_candles():
    candles = generate("BTC/USDT", END - timedelta(days=30), END).set_index("date")

    returns = np.log(candles["close"]).diff()
    daily_volatility = returns.rolling(1440).std().dropna()  # a day's window: not the clock's rhythm
    closes = candles["close"].resample("1D").last()
    three_days = np.log(closes).diff(3).dropna()

    assert daily_volatility.max() / daily_volatility.min() > 2
    assert three_days.max() > 0.05 and three_days.min() < -0.05
    # The volatility follows the clock as well: busier around 15:00 UTC than around 03:00.
    by_hour = returns.abs().groupby(returns.index.hour).mean()
    assert by_hour.loc[13:17].mean() > 1.3 * by_hour.loc[1:5].mean()


def test_volume_is_positive_and_rises_with_the_size_of_the_moves():
    candles = generate("BNB/USDT", END - timedelta(days=5), END)

    moves = np.log(candles["close"] / candles["open"]).abs()

    assert (candles["volume"] > 0).all()
    assert np.corrcoef(candles["volume"], moves)[0, 1] > 0.4


def test_freqtrades_sample_strategy_finds_entries_in_the_5m_candles():
    from freqtrade.templates.sample_strategy import SampleStrategy

    strategy = SampleStrategy({"stake_currency": "USDT", "dry_run": True, "exchange": {"name": "binance"}})
    five = resample(generate("BTC/USDT", END - timedelta(days=14), END), "5m")

    signals = strategy.advise_exit(strategy.advise_entry(strategy.advise_indicators(five, {"pair": "BTC/USDT"}),
                                                         {"pair": "BTC/USDT"}), {"pair": "BTC/USDT"})  # fmt: skip

    assert signals["enter_long"].fillna(0).sum() >= 14  # its exits are mostly its ROI table's
    # Oscillations at the 5m scale: the RSI visits both extremes many times.
    rsi = signals["rsi"].dropna()
    assert ((rsi < 30) & (rsi.shift() >= 30)).sum() >= 20 and ((rsi > 70) & (rsi.shift() <= 70)).sum() >= 20


def test_generate_refuses_unknown_pairs_and_dates_before_the_epoch():
    with pytest.raises(ValueError, match="no demo model"):
        generate("DOGE/USDT", END - timedelta(days=1), END)
    with pytest.raises(ValueError, match="start at 2017"):
        generate("BTC/USDT", datetime(2016, 12, 31, tzinfo=UTC), END)


@pytest.mark.django_db
def test_the_stored_longer_timeframes_are_exactly_the_resampled_1m_candles(datadir):
    demo_data_ensure(days=3, end=END, pairs=["ETH/USDT"])

    minutes = load_candles(datadir, "ETH/USDT", "1m")

    pd.testing.assert_frame_equal(minutes, generate("ETH/USDT", END - timedelta(days=3), END))
    for timeframe, per_day in (("3m", 480), ("5m", 288), ("15m", 96), ("1h", 24), ("4h", 6)):
        longer = load_candles(datadir, "ETH/USDT", timeframe)
        pd.testing.assert_frame_equal(longer, resample(minutes, timeframe))
        assert len(longer) == 3 * per_day
        assert longer["date"].iloc[0] == END - timedelta(days=3)


@pytest.mark.django_db
def test_the_command_stores_four_pairs_in_six_timeframes_over_60_days_as_synthetic_and_a_second_run_nothing(datadir):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first, second = io.StringIO(), io.StringIO()

    call_command("generate_demo_data", stdout=first)
    stamps, rows = _stamps(datadir), list(CandleSet.objects.values())
    call_command("generate_demo_data", stdout=second)

    sets = CandleSet.objects.all()
    assert {(s.pair, s.timeframe) for s in sets} == {(p, tf) for p in DEMO_PAIRS for tf in DEMO_TIMEFRAMES}
    assert set(DEMO_TIMEFRAMES) == {"1m", "3m", "5m", "15m", "1h", "4h"}
    for candle_set in sets:
        minutes = TIMEFRAME_SECONDS[candle_set.timeframe] // 60
        assert candle_set.source == "demo" and candle_set.synthetic
        assert candle_set.start == today - timedelta(days=60)
        assert candle_set.end == today - timedelta(minutes=minutes)
        assert candle_set.records == 60 * 1440 // minutes
        assert len(load_candles(datadir, candle_set.pair, candle_set.timeframe)) == candle_set.records
        assert f"{candle_set.pair} {candle_set.timeframe}: {candle_set.records} candles" in first.getvalue()
    assert "Stored 24 candle sets in" in first.getvalue()
    assert "nothing stored" in second.getvalue()
    assert _stamps(datadir) == stamps and list(CandleSet.objects.values()) == rows


@pytest.mark.django_db
def test_a_later_day_extends_the_stored_candles_forward_with_the_same_history(datadir):
    demo_data_ensure(days=3, end=END, pairs=["BTC/USDT"])
    before = load_candles(datadir, "BTC/USDT", "1m")

    written = demo_data_ensure(days=3, end=END + timedelta(days=2, hours=13), pairs=["BTC/USDT"])

    after = load_candles(datadir, "BTC/USDT", "1m")
    assert [(s.pair, s.timeframe) for s in written] == [("BTC/USDT", tf) for tf in DEMO_TIMEFRAMES]
    pd.testing.assert_frame_equal(after, generate("BTC/USDT", END - timedelta(days=3), END + timedelta(days=2)))
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)
    five = CandleSet.objects.get(pair="BTC/USDT", timeframe="5m")
    assert (five.start, five.end, five.records) == (END - timedelta(days=3), END + timedelta(days=2, minutes=-5), 1440)


@pytest.mark.django_db
def test_demo_data_stored_before_the_longer_timeframes_gains_them_and_keeps_its_files(datadir, monkeypatch):
    # given: what an install stored when the demo data was 1m and 5m only
    monkeypatch.setattr("marketdata.services.DEMO_TIMEFRAMES", ("1m", "5m"))
    demo_data_ensure(days=2, end=END, pairs=["ETH/USDT"])
    stamps = _stamps(datadir)
    monkeypatch.undo()

    # when
    written = demo_data_ensure(days=2, end=END, pairs=["ETH/USDT"])

    # then: the missing timeframes are written, the stored ones left as they are
    assert [s.timeframe for s in written] == ["3m", "15m", "1h", "4h"]
    assert {name: stamp for name, stamp in _stamps(datadir).items() if name in stamps} == stamps
    minutes = load_candles(datadir, "ETH/USDT", "1m")
    pd.testing.assert_frame_equal(load_candles(datadir, "ETH/USDT", "1h"), resample(minutes, "1h"))


@pytest.mark.django_db
def test_another_seed_replaces_the_demo_candles_rather_than_joining_two_markets(datadir):
    demo_data_ensure(days=2, end=END, pairs=["SOL/USDT"])
    original = load_candles(datadir, "SOL/USDT", "1m")

    demo_data_ensure(days=2, end=END + timedelta(days=1), pairs=["SOL/USDT"], seed=DEFAULT_SEED + 1)
    extended = load_candles(datadir, "SOL/USDT", "1m")
    call_command("generate_demo_data", "--days", "1", "--end", "2026-03-01", "--pairs", "SOL/USDT", "--regenerate",
                 stdout=io.StringIO())  # fmt: skip
    regenerated = load_candles(datadir, "SOL/USDT", "1m")

    expected = generate("SOL/USDT", END - timedelta(days=1), END + timedelta(days=1), seed=DEFAULT_SEED + 1)
    pd.testing.assert_frame_equal(extended, expected)
    assert (extended["close"].to_numpy()[:1440] != original["close"].to_numpy()[1440:]).mean() > 0.99
    pd.testing.assert_frame_equal(regenerated, generate("SOL/USDT", END - timedelta(days=1), END))
    assert CandleSet.objects.get(pair="SOL/USDT", timeframe="1m").records == 1440


@pytest.mark.django_db
def test_uploaded_candles_are_never_overwritten_by_demo_ones(datadir):
    uploaded = generate("BNB/USDT", END - timedelta(days=1), END, seed=99)
    uploaded["volume"] = 1.0
    candles_save(pair="BNB/USDT", timeframe="1m", frame=uploaded, source="upload", synthetic=False)

    written = demo_data_ensure(days=2, end=END, pairs=["BNB/USDT"], regenerate=True)

    assert [(s.pair, s.timeframe) for s in written] == [("BNB/USDT", tf) for tf in DEMO_TIMEFRAMES[1:]]
    pd.testing.assert_frame_equal(load_candles(datadir, "BNB/USDT", "1m"), uploaded)
    assert not CandleSet.objects.get(pair="BNB/USDT", timeframe="1m").synthetic


@pytest.mark.django_db
def test_freqtrades_own_loader_reads_the_demo_candles(datadir):
    from freqtrade.data.history import load_pair_history

    demo_data_ensure(days=2, end=END, pairs=["BTC/USDT", "ETH/USDT"])

    for timeframe in DEMO_TIMEFRAMES:
        loaded = load_pair_history("ETH/USDT", timeframe, datadir, data_format="feather")
        stored = load_candles(datadir, "ETH/USDT", timeframe)
        assert len(loaded) == len(stored) == 2 * 86400 // TIMEFRAME_SECONDS[timeframe]
        assert (loaded["date"] == stored["date"]).all()
        assert (loaded[VALUES].to_numpy() == stored[VALUES].to_numpy()).all()
    assert candle_path(datadir, "BTC/USDT", "5m").name == "BTC_USDT-5m.feather"


@pytest.mark.django_db
def test_bootstrap_stores_demo_candles_once_and_not_when_disabled(datadir, settings):
    settings.MARKETDATA = {**settings.MARKETDATA, "demo_on_bootstrap": False, "demo_days": 1}
    call_command("bootstrap", stdout=io.StringIO())
    assert not CandleSet.objects.exists()

    settings.MARKETDATA = {**settings.MARKETDATA, "demo_on_bootstrap": True}
    first, second = io.StringIO(), io.StringIO()
    call_command("bootstrap", stdout=first)
    call_command("bootstrap", stdout=second)

    assert CandleSet.objects.filter(source="demo", synthetic=True).count() == 24
    assert "Stored 24 synthetic demo candle sets (BNB/USDT, BTC/USDT, ETH/USDT, SOL/USDT)" in first.getvalue()
    assert "Synthetic demo candles are up to date" in second.getvalue()


# embedded_only: freqtrade trading the demo candles; storing them (demo_data_ensure) is tested on both above.
@pytest.mark.slow
@pytest.mark.embedded_only
@pytest.mark.django_db
def test_freqtrade_backtesting_trades_the_sample_strategy_on_the_demo_candles(settings, tmp_path):
    from freqtrade.data.btanalysis import load_backtest_stats

    # given: 20 days of demo candles in a home of their own, served by a replay exchange (for markets)
    home = tmp_path / "home"
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": home / "data"}
    demo_data_ensure(days=20)
    port = free_port()
    replay = subprocess.Popen(
        [sys.executable, "manage.py", "run_replay_exchange", "--port", str(port)],
        cwd=ROOT, env=server_env(MULTIBOT_HOME=str(home), MULTIBOT_REPLAY_WARMUP_DAYS="5"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    results = tmp_path / "results"
    results.mkdir()
    try:

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/api/v3/ping", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, 60, "the replay exchange to answer")
        config = write_config(tmp_path / "config.json", exchange_url=url, pairs=list(DEMO_PAIRS))
        # when
        run = subprocess.run(
            [sys.executable, "-m", "freqtrade", "backtesting", "-c", str(config),
             "--userdir", str(user_dir(tmp_path / "user_data")), "--datadir", str(home / "data" / "replay"),
             "--strategy", "SampleStrategy", "--timeframe", "5m", "--export", "trades",
             "--backtest-directory", str(results)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        replay.terminate()
        replay.wait(10)
    # then
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = load_backtest_stats(results)["strategy"]["SampleStrategy"]
    assert summary["total_trades"] >= 10
    assert {trade["pair"] for trade in summary["trades"]} == set(DEMO_PAIRS)
