"""Each candle set's checksum, kept in step with its file; and the signed endpoint that serves the file to workers."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.apps import apps

from marketdata.fetch import CandleFetchError, ensure_candles
from marketdata.models import CandleSet
from marketdata.selectors import candle_set_file
from marketdata.services import candles_save, demo_data_ensure
from marketdata.storage import file_checksum, store_candles
from multibot.host_signature import EXPIRES_HEADER, SIGNATURE_HEADER, signature, signed_headers

START = datetime(2024, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def datadir(settings, tmp_path: Path) -> Path:
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "data"}
    return tmp_path / "data"


def candles(first: int, count: int, *, price: float = 100.0) -> pd.DataFrame:
    dates = pd.date_range(START + timedelta(minutes=5 * first), periods=count, freq="5min", tz=UTC)
    closes = [price + index * 0.25 for index in range(count)]
    return pd.DataFrame({"date": dates, "open": closes, "high": [c + 1 for c in closes],
                         "low": [c - 1 for c in closes], "close": closes, "volume": [10.0] * count})  # fmt: skip


def save(frame: pd.DataFrame, *, pair: str = "BTC/USDT") -> CandleSet:
    candle_set, _ = candles_save(pair=pair, timeframe="5m", frame=frame, source=CandleSet.Source.UPLOAD,
                                 synthetic=False)  # fmt: skip
    return candle_set


def internal_path(candle_set_id: int) -> str:
    return f"/api/v1/internal/candles/{candle_set_id}"


def headers_of(signed: dict[str, str]) -> dict[str, str]:
    """Headers as the Django test client takes them."""
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in signed.items()}


# The checksum on write


def test_a_stored_set_records_the_sha256_and_size_of_its_file_and_a_merge_records_the_new_ones():
    # given
    first = save(candles(0, 50))
    path = candle_set_file(first)
    assert (first.sha256, first.size) == file_checksum(path)
    assert len(first.sha256) == 64 and first.size == path.stat().st_size > 0

    # when: more candles are merged into the file
    merged = save(candles(40, 50, price=200.0))

    # then: the row describes the new file, from the database too
    merged.refresh_from_db()
    assert (merged.sha256, merged.size) == file_checksum(path)
    assert merged.sha256 != first.sha256
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_file_that_cannot_be_put_in_place_leaves_no_row_behind(datadir):
    # given: the set's place is taken by a directory, so the rename into it fails
    (datadir / "replay" / "ETH_USDT-5m.feather").mkdir(parents=True)

    # when (a replacing write: a merging one would already fail at reading the old file)
    with pytest.raises(IsADirectoryError):
        candles_save(pair="ETH/USDT", timeframe="5m", frame=candles(0, 20), source=CandleSet.Source.UPLOAD,
                     synthetic=False, replace=True)  # fmt: skip

    # then: the row (and its checksum) rolled back with the file
    assert not CandleSet.objects.filter(pair="ETH/USDT").exists()
    assert not list((datadir / "replay" / ".staging").iterdir())


def test_demo_candles_record_the_checksums_of_their_files():
    written = demo_data_ensure(days=1, pairs=["BTC/USDT"], end=START)

    assert [candle_set.timeframe for candle_set in written] == ["1m", "3m", "5m", "15m", "1h", "4h"]
    for candle_set in CandleSet.objects.all():
        assert (candle_set.sha256, candle_set.size) == file_checksum(candle_set_file(candle_set))


def test_the_migration_computes_the_checksum_of_each_existing_file_and_leaves_a_row_without_one_empty(datadir):
    # given: rows written before checksums, one whose file is there and one whose file is not
    store_candles(datadir / "replay", "BTC/USDT", "5m", candles(0, 10))
    common = {"start": START, "end": START, "records": 10, "source": CandleSet.Source.UPLOAD}
    present = CandleSet.objects.create(pair="BTC/USDT", timeframe="5m", **common)
    absent = CandleSet.objects.create(pair="ETH/USDT", timeframe="5m", **common)

    # when
    migration = importlib.import_module("marketdata.migrations.0002_candleset_checksum")
    migration.checksum_existing_files(apps, None)

    # then
    present.refresh_from_db()
    absent.refresh_from_db()
    assert (present.sha256, present.size) == file_checksum(candle_set_file(present))
    assert (absent.sha256, absent.size) == ("", 0)


# The endpoint workers fetch files from


def test_a_signed_request_gets_the_file_and_its_checksum(api):
    candle_set = save(candles(0, 30))

    response = api.get(internal_path(candle_set.pk), **headers_of(signed_headers(internal_path(candle_set.pk))))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == candle_set_file(candle_set).read_bytes()
    assert response["X-Checksum-Sha256"] == candle_set.sha256
    assert response["Content-Type"] == "application/octet-stream"
    assert int(response["X-RateLimit-Limit"]) == 600  # its own scope, not the anonymous visitors' budget


def test_an_unsigned_expired_or_forged_request_is_refused_with_the_reason(api, settings):
    candle_set = save(candles(0, 30))
    path = internal_path(candle_set.pk)
    expired = {EXPIRES_HEADER: "1000", SIGNATURE_HEADER: signature(path, 1000)}
    other_path = signed_headers(internal_path(candle_set.pk + 1))
    settings.SECRET_KEY, real_key = "another installation's key", settings.SECRET_KEY
    other_key = signed_headers(path)
    settings.SECRET_KEY = real_key

    cases = {
        "unsigned": ({}, "is not signed"),
        "expired": (expired, "expired"),
        "signed for another path": (other_path, "does not match"),
        "signed with another key": (other_key, "does not match"),
        "not a time": ({**signed_headers(path), EXPIRES_HEADER: "soon"}, "not a time"),
    }
    for case, (headers, reason) in cases.items():
        response = api.get(path, **headers_of(headers))
        assert response.status_code == 403, case
        assert reason in response.json()["detail"], (case, response.json())


def test_a_user_token_does_not_open_the_endpoint(user_api):
    candle_set = save(candles(0, 30))

    response = user_api.get(internal_path(candle_set.pk))

    assert response.status_code == 403
    assert "is not signed" in response.json()["detail"]


def test_an_unknown_set_or_a_missing_file_is_a_404(api):
    candle_set = save(candles(0, 30))
    unknown = internal_path(candle_set.pk + 100)
    assert api.get(unknown, **headers_of(signed_headers(unknown))).status_code == 404

    candle_set_file(candle_set).unlink()
    response = api.get(internal_path(candle_set.pk), **headers_of(signed_headers(internal_path(candle_set.pk))))

    assert response.status_code == 404
    assert "missing on this host" in response.json()["detail"]


def test_the_endpoint_is_not_in_the_api_document(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()

    assert not [path for path in schema["paths"] if "internal" in path]


# What a job's host checks before freqtrade starts (fetching itself: tests/marketdata/test_fetch.py)


def test_candles_nobody_stored_fail_a_job_before_anything_is_fetched():
    save(candles(0, 30))

    with pytest.raises(CandleFetchError, match="No 1m candles are stored for BTC/USDT"):
        ensure_candles(pairs=["BTC/USDT"], timeframes=["5m", "1m"])


def test_on_the_host_that_stores_them_nothing_is_fetched(settings):
    # given: the files are here; the manager's address leads nowhere, so a fetch would fail
    save(candles(0, 30))
    save(candles(0, 30), pair="ETH/USDT")
    settings.MANAGER = {**settings.MANAGER, "url": "http://127.0.0.1:9"}

    assert ensure_candles(pairs=["BTC/USDT", "ETH/USDT"], timeframes=["5m", "5m"]) == []


def test_a_set_without_a_checksum_is_used_if_here_and_never_fetched_unverified(datadir):
    store_candles(datadir / "replay", "BTC/USDT", "5m", candles(0, 10))
    common = {"start": START, "end": START, "records": 10, "source": CandleSet.Source.UPLOAD}
    CandleSet.objects.create(pair="BTC/USDT", timeframe="5m", **common)
    CandleSet.objects.create(pair="ETH/USDT", timeframe="5m", **common)

    assert ensure_candles(pairs=["BTC/USDT"], timeframes=["5m"]) == []
    with pytest.raises(CandleFetchError, match="have no checksum: store them again on the manager"):
        ensure_candles(pairs=["ETH/USDT"], timeframes=["5m"])
