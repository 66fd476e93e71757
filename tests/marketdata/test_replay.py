"""The replay exchange as a real process, checked by ccxt, freqtrade backtesting and a freqtrade dry-run bot."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import ccxt
import httpx
import numpy as np
import pandas as pd
import pytest

from marketdata.replay_config import ccxt_settings
from tests.support.freqtrade import user_dir, write_config
from tests.support.market import store_history
from tests.support.processes import free_port, server_env, wait_for
from tests.support.replay import replay_exchange

# embedded_only: the replay exchange serves candle files; no database behind what it answers.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def replay_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MULTIBOT_HOME of this module's own: its market holds exactly the candles stored here."""
    return tmp_path_factory.mktemp("replay-home")


@pytest.fixture(scope="module")
def datadir(replay_home: Path) -> Path:
    return replay_home / "data" / "replay"


@pytest.fixture(scope="module")
def history(datadir: Path) -> dict[str, pd.DataFrame]:
    """20 days of 1m and 5m candles for BTC/USDT and ETH/USDT, ending today 00:00 UTC."""
    return store_history(datadir)


@pytest.fixture(scope="module")
def replay_url(history: dict[str, pd.DataFrame], replay_home: Path) -> Iterator[str]:
    with replay_exchange(replay_home) as url:
        yield url


@pytest.fixture
def exchange(replay_url: str) -> ccxt.binance:
    return ccxt.binance(ccxt_settings(replay_url))


def _stored_minute(frame: pd.DataFrame, stored_ms: int) -> pd.Series | None:
    rows = frame[frame["date"] == pd.Timestamp(stored_ms, unit="ms", tz="UTC")]
    return None if rows.empty else rows.iloc[0]


def test_ccxt_loads_the_stored_pairs_as_spot_markets(exchange):
    markets = exchange.load_markets()
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["active"] and btc["quote"] == "USDT"
    assert btc["precision"]["price"] == 0.01
    assert btc["limits"]["cost"]["min"] == 5.0


def test_ccxt_ohlcv_are_the_stored_candles_shifted_by_whole_days_and_never_ahead_of_now(exchange, history):
    candles = exchange.fetch_ohlcv("BTC/USDT", "1m", limit=30)
    now_ms = time.time() * 1000
    frame = history["BTC/USDT"]
    assert len(candles) == 30
    assert candles[-1][0] <= now_ms < candles[-1][0] + 60_000 + 2_000  # the minute in progress
    complete = candles[:-1]
    # The shift between served and stored time is a whole number of days, the same for all.
    shifts = set()
    for open_time, o, h, low, c, v in complete:
        for days in range(0, 40):
            row = _stored_minute(frame, open_time - days * DAY_MS)
            if row is not None and np.isclose(row["open"], o) and np.isclose(row["close"], c):
                assert np.isclose(row["high"], h) and np.isclose(row["low"], low) and np.isclose(row["volume"], v)
                shifts.add(days)
                break
        else:
            pytest.fail(f"served candle {open_time} matches no stored candle")
    assert len(shifts) == 1


def test_five_minute_candles_aggregate_the_minutes(exchange):
    five = exchange.fetch_ohlcv("ETH/USDT", "5m", limit=4)[:-1]
    ones = exchange.fetch_ohlcv("ETH/USDT", "1m", since=five[0][0], limit=15)
    for index, (open_time, o, h, low, c, v) in enumerate(five):
        minutes = ones[index * 5 : index * 5 + 5]
        assert [m[0] for m in minutes] == [open_time + i * 60_000 for i in range(5)]
        assert o == minutes[0][1] and c == minutes[-1][4]
        assert h == max(m[2] for m in minutes) and low == min(m[3] for m in minutes)
        assert v == pytest.approx(sum(m[5] for m in minutes))


def test_ticker_and_order_book_follow_the_last_closed_minute(exchange):
    last_closed = exchange.fetch_ohlcv("BTC/USDT", "1m", limit=2)[0]
    ticker = exchange.fetch_ticker("BTC/USDT")
    book = exchange.fetch_order_book("BTC/USDT", 5)
    assert ticker["last"] == pytest.approx(last_closed[4])
    assert book["bids"][0][0] < ticker["last"] < book["asks"][0][0]
    assert [level[0] for level in book["bids"]] == sorted((level[0] for level in book["bids"]), reverse=True)
    assert [level[0] for level in book["asks"]] == sorted(level[0] for level in book["asks"])
    assert ticker["baseVolume"] > 0 and ticker["high"] >= ticker["last"] >= ticker["low"]


def test_unknown_symbols_and_intervals_get_binance_errors(exchange, replay_url):
    with pytest.raises(ccxt.BadSymbol):
        exchange.fetch_ticker("XRP/USDT")
    unknown = httpx.get(f"{replay_url}/api/v3/ticker/24hr", params={"symbol": "XRPUSDT"})
    assert unknown.status_code == 400 and unknown.json() == {"code": -1121, "msg": "Invalid symbol."}
    bad_interval = httpx.get(f"{replay_url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "7m"})
    assert bad_interval.json()["code"] == -1120
    missing = httpx.get(f"{replay_url}/api/v3/klines", params={"interval": "1m"})
    assert missing.json()["code"] == -1102
    private = httpx.get(f"{replay_url}/api/v3/account")
    assert private.status_code == 401 and private.json()["code"] == -2015


def test_freqtrade_backtesting_runs_the_sample_strategy_with_replay_market_metadata(replay_url, datadir, tmp_path):
    from freqtrade.data.btanalysis import load_backtest_stats

    userdir = user_dir(tmp_path / "user_data")
    config = write_config(tmp_path / "config.json", exchange_url=replay_url, pairs=["BTC/USDT", "ETH/USDT"])
    results = tmp_path / "results"
    results.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "freqtrade", "backtesting", "-c", str(config), "--userdir", str(userdir),
         "--datadir", str(datadir), "--strategy", "SampleStrategy",
         "--timeframe", "5m", "--export", "trades", "--backtest-directory", str(results)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stats = load_backtest_stats(results)
    summary = stats["strategy"]["SampleStrategy"]
    assert summary["total_trades"] > 0
    assert set(summary["pairlist"]) == {"BTC/USDT", "ETH/USDT"}


def test_a_dry_run_bot_opens_a_trade_at_a_replayed_price(replay_url, exchange, tmp_path):
    userdir = user_dir(tmp_path / "user_data")
    port, password = free_port(), secrets.token_urlsafe(12)
    config = write_config(
        tmp_path / "config.json", exchange_url=replay_url, pairs=["BTC/USDT"], timeframe="1m",
        db_url=f"sqlite:///{tmp_path / 'trades.sqlite'}",
        api_server={"enabled": True, "listen_ip_address": "127.0.0.1", "listen_port": port,
                    "username": "tester", "password": password, "jwt_secret_key": secrets.token_hex(16),
                    "ws_token": secrets.token_urlsafe(12), "CORS_origins": []},
    )  # fmt: skip
    bot = subprocess.Popen(
        [sys.executable, "-m", "freqtrade", "trade", "-c", str(config), "--userdir", str(userdir),
         "--strategy", "AlwaysIn"],
        cwd=tmp_path, env=server_env(),
    )  # fmt: skip
    trades: list[dict] = []

    def open_trade() -> bool:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/api/v1/status", auth=("tester", password), timeout=2)
        except httpx.HTTPError:
            return False
        if response.status_code == 200 and response.json():
            trades[:] = response.json()
            return True
        return False

    try:
        wait_for(open_trade, 120, "the bot to open a trade")
        low_high = exchange.fetch_ohlcv("BTC/USDT", "1m", limit=5)
        shown = httpx.get(f"http://127.0.0.1:{port}/api/v1/show_config", auth=("tester", password), timeout=5).json()
    finally:
        bot.terminate()
        bot.wait(30)
    trade = trades[0]
    assert trade["pair"] == "BTC/USDT" and trade["is_open"]
    lows, highs = [c[3] for c in low_high], [c[2] for c in low_high]
    # Bought at the replay's ask: within the recent candles' range, give or take the spread.
    assert min(lows) * 0.999 <= trade["open_rate"] <= max(highs) * 1.001, (trade["open_rate"], low_high)
    assert shown["exchange"] == "binance" and shown["dry_run"] is True


@pytest.mark.django_db
def test_analytics_market_shows_the_replayed_prices(exchange, user_api, replay_home, settings):
    # The web process reads the same files and the same anchor as the replay exchange process.
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": replay_home / "data"}
    settings.REPLAY = {**settings.REPLAY, "anchor_file": replay_home / "replay" / "anchor.json"}
    ticker = exchange.fetch_ticker("BTC/USDT")

    response = user_api.get("/api/v1/analytics/market")

    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"btc_usdt", "eth_usdt"}
    btc = data["btc_usdt"]
    assert btc["price"] == pytest.approx(ticker["last"])
    assert btc["change_24h"] == pytest.approx(ticker["percentage"], abs=1e-3)
    assert btc["volume_24h"] == pytest.approx(ticker["quoteVolume"], rel=1e-6)
