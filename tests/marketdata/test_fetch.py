"""A worker on another host fetches the candles it lacks from a live manager, checks them, and refuses wrong ones.

The manager is a real uvicorn on its own MULTIBOT_HOME (holding the files) and the test database; the
"worker host" is this test process with another candle directory, empty at first: only the database,
Redis and SECRET_KEY are shared, as between machines.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings as django_settings

from marketdata.fetch import CandleFetchError, ensure_candles
from marketdata.models import CandleSet
from marketdata.selectors import candle_set_file
from marketdata.services import candles_save
from tests.support.processes import database_url, free_port, server_env, uvicorn_server

pytestmark = [pytest.mark.slow]

START = datetime(2024, 1, 1, tzinfo=UTC)
SETS = [("BTC/USDT", "5m"), ("BTC/USDT", "1m"), ("ETH/USDT", "5m")]


def candles(timeframe: str, count: int, price: float) -> pd.DataFrame:
    dates = pd.date_range(START, periods=count, freq=timeframe.replace("m", "min"), tz=UTC)
    closes = [price + index * 0.5 for index in range(count)]
    return pd.DataFrame({"date": dates, "open": closes, "high": [c + 1 for c in closes],
                         "low": [c - 1 for c in closes], "close": closes, "volume": [3.0] * count})  # fmt: skip


@pytest.fixture
def manager(committed_db: None, settings: Any, tmp_path: Path) -> Iterator[str]:
    """A live manager whose home stores SETS (rows committed, files on its disk); yields its URL."""
    home = tmp_path / "manager"
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": home / "data"}
    for index, (pair, timeframe) in enumerate(SETS):
        candles_save(pair=pair, timeframe=timeframe, frame=candles(timeframe, 2000, 100.0 * (index + 1)),
                     source=CandleSet.Source.UPLOAD, synthetic=False)  # fmt: skip
    env = server_env(MULTIBOT_HOME=str(home), DATABASE_URL=database_url(),
                     REDIS_URL=django_settings.REDIS_URL, SECRET_KEY=django_settings.SECRET_KEY)  # fmt: skip
    with open(tmp_path / "manager.log", "w") as log, uvicorn_server(env, output=log) as base:
        yield base


@pytest.fixture
def worker_host(manager: str, settings: Any, tmp_path: Path) -> Path:
    """This process as a worker on another host: its own (empty) candle directory, the manager's URL."""
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "worker" / "data"}
    settings.MANAGER = {**settings.MANAGER, "url": manager}
    return tmp_path / "worker" / "data"


def manager_file(candle_set: CandleSet, tmp_path: Path) -> Path:
    return tmp_path / "manager" / "data" / candle_set.exchange / candle_set_file(candle_set).name


def test_a_worker_fetches_what_it_lacks_checks_it_and_replaces_a_local_file_that_differs(worker_host, tmp_path):
    # given: nothing of the manager's candles on the worker host
    wanted = {"pairs": ["BTC/USDT", "ETH/USDT"], "timeframes": ["5m"]}
    assert not worker_host.exists()

    # when
    fetched = ensure_candles(**wanted)

    # then: the two 5m files, byte for byte the manager's, private; the 1m one is not asked for
    assert sorted(str(candle_set) for candle_set in fetched) == ["replay BTC/USDT 5m", "replay ETH/USDT 5m"]
    for candle_set in fetched:
        local = candle_set_file(candle_set)
        assert local.read_bytes() == manager_file(candle_set, tmp_path).read_bytes()
        assert local.stat().st_mode & 0o777 == 0o600
    assert sorted(path.name for path in (worker_host / "replay").iterdir()) == ["BTC_USDT-5m.feather",
                                                                                "ETH_USDT-5m.feather"]  # fmt: skip
    # A second job finds them in place: nothing is fetched.
    assert ensure_candles(**wanted) == []

    # when: a local file is not the recorded one any more
    btc = CandleSet.objects.get(pair="BTC/USDT", timeframe="5m")
    candle_set_file(btc).write_bytes(b"not the candles")

    # then: only that one is fetched again, and is the manager's
    assert [str(candle_set) for candle_set in ensure_candles(**wanted)] == ["replay BTC/USDT 5m"]
    assert candle_set_file(btc).read_bytes() == manager_file(btc, tmp_path).read_bytes()


def test_a_file_the_manager_serves_that_is_not_the_recorded_one_is_refused_and_not_written(worker_host, tmp_path):
    # given: the manager's file changed after its row was written
    btc = CandleSet.objects.get(pair="BTC/USDT", timeframe="1m")
    served = manager_file(btc, tmp_path)
    served.write_bytes(served.read_bytes()[:-10] + b"0123456789")

    # when
    with pytest.raises(CandleFetchError, match="do not match their checksum") as refused:
        ensure_candles(pairs=["BTC/USDT"], timeframes=["1m"])

    # then: nothing is left where freqtrade would read it, nor beside it
    assert "the file was not used" in str(refused.value)
    assert not candle_set_file(btc).exists()
    assert list((worker_host / "replay").iterdir()) == []


def test_a_manager_that_cannot_be_reached_or_refuses_the_signature_fails_with_the_reason(
    manager, worker_host, settings
):
    # given: a manager address where nothing listens
    settings.MANAGER = {**settings.MANAGER, "url": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(CandleFetchError, match=r"could not be fetched from the manager at http://127\.0\.0\.1:"):
        ensure_candles(pairs=["ETH/USDT"], timeframes=["5m"])

    # given: the manager, but a worker that does not share its SECRET_KEY
    settings.MANAGER = {**settings.MANAGER, "url": manager}
    settings.SECRET_KEY = "another installation's key"
    with pytest.raises(CandleFetchError, match=r"refused .*\(403: The signature does not match"):
        ensure_candles(pairs=["ETH/USDT"], timeframes=["5m"])
    assert not (worker_host / "replay" / "ETH_USDT-5m.feather").exists()
