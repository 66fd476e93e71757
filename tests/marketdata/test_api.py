"""/api/v1/data/: listing, uploading (merged, refused, audited, limited) and downloading candles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditLog
from marketdata.csv_validation import HEADER, parse_candles_csv
from marketdata.models import CandleSet
from marketdata.services import candles_save
from marketdata.storage import candle_path

LIST = "/api/v1/data/"
UPLOAD = "/api/v1/data/upload"
START = datetime(2024, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def datadir(settings, tmp_path: Path) -> Path:
    """Each test's own candle directory (MULTIBOT_HOME is shared by the whole run)."""
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "data"}
    return tmp_path / "data"


def candle_rows(first: int, count: int, *, bump: float = 0.0) -> list[str]:
    """5m candles numbered from ``first`` (0 = 2024-01-01 00:00), prices that need full precision."""
    rows = []
    for index in range(first, first + count):
        moment = START + timedelta(minutes=5 * index)
        price = 42_000 + index * 0.1 + bump
        rows.append(f"{moment:%Y-%m-%d %H:%M:%S},{price},{price + 7.25},{price - 3.5},{price + 1.3},{index / 3}")
    return rows


def csv_text(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def upload(client, text: str, *, pair: str = "BTC/USDT", timeframe: str = "5m"):
    file = SimpleUploadedFile("candles.csv", text.encode(), content_type="text/csv")
    return client.post(UPLOAD, {"file": file, "pair": pair, "timeframe": timeframe}, format="multipart")


def download(client, pair: str = "BTC_USDT", timeframe: str = "5m"):
    return client.get(f"/api/v1/data/download/{pair}/{timeframe}")


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def as_frame(text: str) -> pd.DataFrame:
    return parse_candles_csv(text.encode(), timeframe="5m", max_bytes=10**8)


def stored_file(datadir: Path, pair: str = "BTC/USDT", timeframe: str = "5m") -> Path:
    return candle_path(datadir / "replay", pair, timeframe)


# Listing


def test_the_list_is_empty_before_anything_is_stored(user_api):
    response = user_api.get(LIST)

    assert response.status_code == 200
    assert response.json() == {"data": []}


def test_the_list_has_the_seed_shape_and_more_and_is_shared_by_every_user(user_api, other_api):
    # given: one user uploads
    assert upload(user_api, csv_text(candle_rows(0, 300))).status_code == 201

    # when: another user lists (also without the trailing slash)
    response = other_api.get("/api/v1/data")

    # then
    assert response.status_code == 200
    (entry,) = response.json()["data"]
    assert {key: entry[key] for key in ("pair", "timeframe", "start_date", "end_date", "records")} == {
        "pair": "BTC/USDT",
        "timeframe": "5m",
        "start_date": "2024-01-01",
        "end_date": "2024-01-02",
        "records": 300,
    }
    assert entry["exchange"] == "replay"
    assert (entry["source"], entry["synthetic"]) == ("upload", False)
    assert pd.Timestamp(entry["start"]) == pd.Timestamp("2024-01-01T00:00:00Z")
    assert pd.Timestamp(entry["end"]) == pd.Timestamp("2024-01-02T00:55:00Z")


def test_the_list_is_ordered_by_pair_then_timeframe(user_api):
    for pair, timeframe, minutes in [("ETH/USDT", "5m", 5), ("BTC/USDT", "5m", 5), ("BTC/USDT", "1m", 1)]:
        rows = [f"{START + timedelta(minutes=i * minutes):%Y-%m-%d %H:%M},1,2,0.5,1.5,3" for i in range(2)]
        assert upload(user_api, csv_text(rows), pair=pair, timeframe=timeframe).status_code == 201

    listed = [(entry["pair"], entry["timeframe"]) for entry in user_api.get(LIST).json()["data"]]

    assert listed == [("BTC/USDT", "1m"), ("BTC/USDT", "5m"), ("ETH/USDT", "5m")]


# Uploading


def test_an_upload_is_stored_where_and_how_freqtrade_reads_it(user_api, datadir):
    text = csv_text(candle_rows(0, 12))

    response = upload(user_api, text)

    assert response.status_code == 201
    assert {key: response.json()[key] for key in ("status", "added", "updated", "records")} == {
        "status": "uploaded",
        "added": 12,
        "updated": 0,
        "records": 12,
    }
    assert response.json()["data"]["records"] == 12
    on_disk = pd.read_feather(datadir / "replay" / "BTC_USDT-5m.feather")
    assert list(on_disk.columns) == ["date", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(on_disk, as_frame(text), check_dtype=False)
    # freqtrade's own loader (what backtesting uses) reads it as it is.
    from freqtrade.data.history import load_pair_history

    loaded = load_pair_history("BTC/USDT", "5m", datadir / "replay", data_format="feather", fill_up_missing=False)
    pd.testing.assert_frame_equal(loaded.loc[:, on_disk.columns], as_frame(text), check_dtype=False)
    candle_set = CandleSet.objects.get()
    assert (candle_set.records, candle_set.start, candle_set.end) == (12, START, START + timedelta(minutes=55))


def test_an_upload_then_a_download_returns_the_same_candles(user_api):
    text = csv_text(candle_rows(0, 2_500))
    assert upload(user_api, text).status_code == 201

    response = download(user_api)

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="BTC_USDT-5m.csv"'
    downloaded = body(response)
    assert downloaded.startswith(HEADER + "\n2024-01-01T00:00:00Z,42000.0,42007.25,41996.5,42001.3,0.0\n")
    pd.testing.assert_frame_equal(as_frame(downloaded), as_frame(text))


def test_an_overlapping_upload_updates_the_overlap_and_adds_the_rest(user_api):
    # given: candles 0-9 stored
    assert upload(user_api, csv_text(candle_rows(0, 10))).status_code == 201

    # when: candles 5-14 arrive with other prices
    response = upload(user_api, csv_text(candle_rows(5, 10, bump=1000)))

    # then
    assert response.status_code == 201
    assert {key: response.json()[key] for key in ("added", "updated", "records")} == {
        "added": 5,
        "updated": 5,
        "records": 15,
    }
    merged = as_frame(body(download(user_api)))
    expected = as_frame(csv_text(candle_rows(0, 5) + candle_rows(5, 10, bump=1000)))
    pd.testing.assert_frame_equal(merged, expected)
    assert merged["date"].is_unique
    assert CandleSet.objects.get().records == 15


def test_an_upload_into_a_synthetic_set_keeps_it_marked_synthetic(user_api):
    demo = as_frame(csv_text(candle_rows(0, 10)))
    candles_save(pair="BTC/USDT", timeframe="5m", frame=demo, source="demo", synthetic=True)

    assert upload(user_api, csv_text(candle_rows(10, 5))).status_code == 201

    (entry,) = user_api.get(LIST).json()["data"]
    assert (entry["records"], entry["source"], entry["synthetic"]) == (15, "upload", True)


def test_a_pair_may_be_written_with_an_underscore(user_api, datadir):
    response = upload(user_api, csv_text(candle_rows(0, 3)), pair="ETH_BTC")

    assert response.status_code == 201
    assert response.json()["data"]["pair"] == "ETH/BTC"
    assert stored_file(datadir, "ETH/BTC").exists()


# Downloading


@pytest.mark.parametrize("pair", ["BTC_USDT", "BTC%2FUSDT", "BTC/USDT"])
def test_a_download_finds_the_pair_however_it_is_written(user_api, pair):
    assert upload(user_api, csv_text(candle_rows(0, 3))).status_code == 201

    response = download(user_api, pair=pair)

    assert response.status_code == 200
    assert len(body(response).splitlines()) == 4


@pytest.mark.parametrize(
    ("pair", "timeframe"),
    [("ETH_USDT", "5m"), ("BTC_USDT", "1h"), ("BTC_USDT", "7m"), ("nonsense", "5m"), ("BTC%2FUSDT%2FX", "5m")],
)
def test_an_unknown_pair_or_timeframe_is_a_404(user_api, pair, timeframe):
    assert upload(user_api, csv_text(candle_rows(0, 3))).status_code == 201

    response = download(user_api, pair=pair, timeframe=timeframe)

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_a_download_from_another_exchange_than_replay_is_a_404_when_nothing_is_stored_there(user_api):
    assert upload(user_api, csv_text(candle_rows(0, 3))).status_code == 201

    assert user_api.get("/api/v1/data/download/BTC_USDT/5m?exchange=binance").status_code == 404
    assert user_api.get("/api/v1/data/download/BTC_USDT/5m?exchange=replay").status_code == 200


def test_a_listed_set_whose_file_is_gone_is_a_404_not_a_crash(user_api, datadir):
    assert upload(user_api, csv_text(candle_rows(0, 3))).status_code == 201
    stored_file(datadir).unlink()

    response = download(user_api)

    assert response.status_code == 404
    assert response.json() == {"detail": "The 5m candles of BTC/USDT are not available."}


# Access, limits, audit


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", LIST), ("post", UPLOAD), ("get", "/api/v1/data/download/BTC_USDT/5m")],
)
def test_every_data_endpoint_needs_a_token(api, method, path):
    response = getattr(api, method)(path)

    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_the_upload_limit_refuses_the_third_upload_with_a_429(user_api, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "2/hour"}

    answers = [upload(user_api, csv_text(candle_rows(i * 3, 3))) for i in range(3)]

    assert [answer.status_code for answer in answers] == [201, 201, 429]
    assert answers[2].json()["detail"] == "Rate limit exceeded: 2/hour"
    assert int(answers[2]["Retry-After"]) >= 1
    assert CandleSet.objects.get().records == 6
    # Reading is not an upload: still allowed.
    assert user_api.get(LIST).status_code == 200


def test_a_successful_upload_writes_one_audit_row(user_api, user):
    assert upload(user_api, csv_text(candle_rows(0, 4))).status_code == 201

    row = AuditLog.objects.get()
    assert (row.action, row.status, row.user_id) == ("data_upload", "success", user.pk)
    assert row.resource == "data:replay:BTC/USDT:5m"
    assert row.details == {
        "pair": "BTC/USDT",
        "timeframe": "5m",
        "source": "upload",
        "added": 4,
        "updated": 0,
        "records": 4,
    }


def test_a_refused_upload_is_audited_as_a_failure(user_api, user):
    rows = candle_rows(0, 4)
    rows[2] = rows[2].replace(",42000.2,", ",abc,", 1)

    response = upload(user_api, csv_text(rows))

    assert response.status_code == 422
    row = AuditLog.objects.get()
    assert (row.action, row.status, row.user_id, row.resource) == ("data_upload", "failure", user.pk, "data")
    assert row.details["status_code"] == 422
    assert row.details["detail"][0]["loc"] == ["body", "file", "row 4", "open"]


def test_a_refused_upload_leaves_the_stored_candles_untouched(user_api, datadir):
    # given
    assert upload(user_api, csv_text(candle_rows(0, 20))).status_code == 201
    before_bytes = stored_file(datadir).read_bytes()
    before_row = CandleSet.objects.values().get()

    # when: an overlapping upload whose last row is bad
    rows = candle_rows(10, 20, bump=5)
    rows[-1] = rows[-1].rsplit(",", 1)[0] + ",-1"
    response = upload(user_api, csv_text(rows))

    # then
    assert response.status_code == 422
    assert stored_file(datadir).read_bytes() == before_bytes
    assert CandleSet.objects.values().get() == before_row
    assert sorted(path.name for path in (datadir / "replay").iterdir() if path.is_file()) == ["BTC_USDT-5m.feather"]


# Refusals: 422 naming the field, or the file's row and column


def test_a_csv_refusal_names_the_row_and_column(user_api):
    rows = candle_rows(0, 5)
    rows[3] = rows[3].replace("2024-01-01 00:15:00", "2024-01-01 00:17:00")

    response = upload(user_api, csv_text(rows))

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "value_error",
                "loc": ["body", "file", "row 5", "date"],
                "msg": "Row 5: date 2024-01-01 00:17:00 is not on a 5m boundary "
                "(that candle opens at 2024-01-01 00:15:00).",
                "input": "2024-01-01 00:17:00",
            }
        ]
    }
    assert not CandleSet.objects.exists()


def test_an_empty_file_is_refused(user_api):
    response = upload(user_api, "")

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"type": "missing", "loc": ["body", "file"], "msg": "The file is empty.", "input": None}
    ]


@pytest.mark.parametrize(
    ("pair", "words"),
    [("btc/usdt", "like 'BTC/USDT'"), ("BTC-USDT", "like 'BTC/USDT'"), ("BTC/USDT:USDT", "Only spot candles")],
)
def test_a_bad_pair_is_refused(user_api, pair, words):
    response = upload(user_api, csv_text(candle_rows(0, 3)), pair=pair)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "pair"], pair)
    assert words in error["msg"]


@pytest.mark.parametrize("timeframe", ["7m", "1M", ""])
def test_a_bad_timeframe_is_refused(user_api, timeframe):
    response = upload(user_api, csv_text(candle_rows(0, 3)), timeframe=timeframe)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "timeframe"]]


def test_missing_fields_are_refused_by_name(user_api):
    response = user_api.post(UPLOAD, {}, format="multipart")

    assert response.status_code == 422
    errors = {tuple(error["loc"]): error["type"] for error in response.json()["detail"]}
    assert errors == {("body", "file"): "missing", ("body", "pair"): "missing", ("body", "timeframe"): "missing"}


def test_an_upload_must_be_multipart(user_api):
    response = user_api.post(UPLOAD, {"pair": "BTC/USDT", "timeframe": "5m", "file": HEADER}, format="json")

    assert response.status_code == 415


def test_a_file_over_the_size_cap_is_refused(user_api, settings, datadir):
    text = csv_text(candle_rows(0, 10))
    settings.MARKETDATA = {**settings.MARKETDATA, "max_upload_bytes": len(text.encode()) - 1}

    response = upload(user_api, text)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("too_long", ["body", "file"])
    assert not stored_file(datadir).exists()


def test_a_body_far_over_the_size_cap_is_refused_from_its_declared_length(user_api, settings):
    settings.MARKETDATA = {**settings.MARKETDATA, "max_upload_bytes": 1000}
    text = csv_text(candle_rows(0, 1500))  # ~90 KB: beyond the cap plus the multipart allowance

    response = upload(user_api, text)

    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "The file is larger than 1000 bytes."


def test_a_file_over_the_row_cap_is_refused(user_api, settings):
    settings.MARKETDATA = {**settings.MARKETDATA, "max_upload_rows": 5}

    response = upload(user_api, csv_text(candle_rows(0, 6)))

    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "The file has 6 candles; at most 5 are accepted."


# Through a real server


@pytest.mark.slow
@pytest.mark.usefixtures("committed_db")
def test_a_real_server_takes_an_upload_and_serves_it_for_a_url_encoded_pair(settings):
    from tests.factories import access_token_for, make_user
    from tests.support.processes import database_url, server_env, uvicorn_server

    # given: a real uvicorn process; it stores under MULTIBOT_HOME, so the pair is one no other test uses
    headers = {"Authorization": f"Bearer {access_token_for(make_user())}"}
    pair, text = "E2EDATA/USDT", csv_text(candle_rows(0, 50))
    stored = candle_path(Path(settings.HOME) / "data" / "replay", pair, "5m")
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    try:
        with uvicorn_server(env) as base:
            # when
            uploaded = httpx.post(
                f"{base}/api/v1/data/upload", headers=headers, timeout=30,
                data={"pair": pair, "timeframe": "5m"}, files={"file": ("c.csv", text.encode(), "text/csv")},
            )  # fmt: skip
            encoded = httpx.get(f"{base}/api/v1/data/download/E2EDATA%2FUSDT/5m", headers=headers, timeout=30)
            underscored = httpx.get(f"{base}/api/v1/data/download/E2EDATA_USDT/5m", headers=headers, timeout=30)
    finally:
        stored.unlink(missing_ok=True)

    # then
    assert uploaded.status_code == 201, uploaded.text
    assert (encoded.status_code, underscored.status_code) == (200, 200)
    assert encoded.text == underscored.text
    pd.testing.assert_frame_equal(as_frame(encoded.text), as_frame(text))
