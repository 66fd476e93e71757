"""One vocabulary of timeframes and pairs, and the modules that use it agree with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots import validation
from marketdata import replay_market, storage
from marketdata.vocabulary import (
    REPLAY_TIMEFRAMES,
    TIMEFRAME_SECONDS,
    TIMEFRAMES,
    Pair,
    is_spot_pair,
    pair_from_file_stem,
    pair_from_input,
    parse_pair,
    timeframe_ms,
)


def test_bots_trade_every_freqtrade_timeframe_and_storage_keeps_the_fixed_length_ones():
    assert TIMEFRAMES == ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
    assert set(TIMEFRAME_SECONDS) == set(TIMEFRAMES) - {"1M"}
    assert TIMEFRAME_SECONDS["1h"] == 3600 and TIMEFRAME_SECONDS["1w"] == 7 * 86400


def test_the_replay_serves_exactly_the_timeframes_that_divide_a_day():
    assert REPLAY_TIMEFRAMES == ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
    assert replay_market.TIMEFRAME_MS == {tf: TIMEFRAME_SECONDS[tf] * 1000 for tf in REPLAY_TIMEFRAMES}
    assert (replay_market.MINUTE_MS, replay_market.DAY_MS) == (timeframe_ms("1m"), timeframe_ms("1d"))


def test_storage_and_the_upload_check_use_the_same_table():
    from marketdata import csv_validation

    assert storage.TIMEFRAME_SECONDS is TIMEFRAME_SECONDS
    assert csv_validation.TIMEFRAME_SECONDS is TIMEFRAME_SECONDS


@pytest.mark.parametrize("timeframe", ["1M", "7m", ""])
def test_a_timeframe_without_a_fixed_length_has_no_milliseconds(timeframe):
    with pytest.raises(KeyError):
        timeframe_ms(timeframe)


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("BTC/USDT", Pair("BTC", "USDT")),
        ("BTC/USDT:USDT", Pair("BTC", "USDT", "USDT")),
        ("1INCH/BUSD", Pair("1INCH", "BUSD")),
        ("BTCUSDT", None),
        ("btc/usdt", None),
        ("BTC_USDT", None),
        ("B/USDT", None),
        (None, None),
        (["BTC/USDT"], None),
    ],
)
def test_a_pair_is_base_slash_quote_with_an_optional_settle_currency(text, pair):
    assert parse_pair(text) == pair


def test_a_pair_reads_back_as_it_was_written_and_knows_its_file_name():
    futures = parse_pair("ETH/USDT:USDT")

    assert str(parse_pair("ETH/USDT")) == "ETH/USDT" and str(futures) == "ETH/USDT:USDT"
    assert parse_pair("ETH/USDT").file_stem == "ETH_USDT"
    assert pair_from_file_stem("ETH_USDT") == "ETH/USDT"
    assert not futures.is_spot and is_spot_pair("ETH/USDT") and not is_spot_pair("ETH/USDT:USDT")


@pytest.mark.parametrize(("raw", "pair"), [("BTC_USDT", "BTC/USDT"), (" BTC/USDT ", "BTC/USDT"), ("A_B_C", "A_B_C")])
def test_a_pair_may_be_written_with_an_underscore_where_a_slash_is_awkward(raw, pair):
    assert pair_from_input(raw) == pair


def test_a_candle_file_is_only_named_for_a_spot_pair(tmp_path: Path):
    assert storage.candle_path(tmp_path, "BTC/USDT", "5m") == tmp_path / "BTC_USDT-5m.feather"
    for pair in ("BTC/USDT:USDT", "../../etc/passwd", "BTC_USDT"):
        with pytest.raises(storage.StorageError):
            storage.candle_path(tmp_path, pair, "5m")


def test_bot_rules_use_the_vocabulary():
    with pytest.raises(validation.ConfigError) as unknown:
        validation.check_timeframe("2d", exchange="binance")
    validation.check_timeframe("1M", exchange="binance")
    with pytest.raises(validation.ConfigError):
        validation.check_timeframe("1M", exchange="replay")

    assert "1M" in str(unknown.value) and unknown.value.field == "timeframe"
