"""The model cache: predictions of trained models from the walled predictor process, its LRU and statistics."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings

from freqai import cache
from freqai.artifacts import pair_models
from jobs import execution
from tests.freqai.test_training import URL, train

# The predictor reads files only; what it is asked for (ownership, versions) is the same queries as the API tests
# on both databases.
pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.embedded_only]

PAIRS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture
def small_cache(settings: Any) -> Iterator[None]:
    """A predictor of this test's own, holding two models."""
    settings.FREQAI = {**settings.FREQAI, "cache_size": 2}
    cache.predictor_reset()
    yield
    cache.predictor_reset()


@pytest.fixture
def trained_model() -> Iterator[Any]:
    """Trains models; their artifacts and their jobs' directories are removed after the test: the rolled-back
    database reuses their ids, and a training of another test would find this one's files."""
    from freqai.services import model_dir
    from jobs.services import job_dir

    made: list[tuple[int, int]] = []

    def make(api: Any, name: str, strategy: str | None = None) -> int:
        made.append(_trained_model(api, name, strategy))
        return made[-1][0]

    yield make
    for model_id, job_id in made:
        shutil.rmtree(model_dir(model_id), ignore_errors=True)
        shutil.rmtree(job_dir(job_id), ignore_errors=True)


def _trained_model(api: Any, name: str, strategy: str | None = None) -> tuple[int, int]:
    """A tiny LightGBMRegressor of both stored pairs, trained for real (one-day windows)."""
    fields = {"name": name, "model_type": "LightGBMRegressor", "pairs": PAIRS, "include_corr_pairlist": [],
              "train_period_days": 2, "backtest_period_days": 1, "label_period_candles": 12,
              "indicator_periods_candles": [10], **({"strategy_name": strategy} if strategy else {})}  # fmt: skip
    response = api.post(URL, fields, format="json")
    assert response.status_code == 201, response.json()
    model_id = response.json()["id"]
    job = train(api, model_id)
    assert execution.job_execute(job_id=job.pk) == "completed"
    return model_id, job.pk


def predict(api: Any, model_id: int, pair: str, **query: str) -> Any:
    return api.get(f"{URL}{model_id}/predictions", {"pair": pair, **query})


def test_a_scripted_access_sequence_gives_the_expected_hits_misses_and_evictions(
    market, freqai_strategy, user, user_api, other_api, admin_api, small_cache, trained_model
):
    # given: two trained models of two pairs each, four keys for a cache of two
    first, second = trained_model(user_api, "first"), trained_model(user_api, "second")
    a, b, c, d = (first, PAIRS[0]), (first, PAIRS[1]), (second, PAIRS[0]), (second, PAIRS[1])
    script = [(a, "miss"), (b, "miss"), (a, "hit"), (c, "miss"), (b, "miss"), (c, "hit"), (d, "miss"),
              (a, "miss"), (d, "hit")]  # fmt: skip
    assert user_api.get("/api/v1/freqai/cache/stats").json()["cached_models"] == 0

    # when
    answers = []
    for (model_id, pair), expected in script:
        response = predict(user_api, model_id, pair)
        assert response.status_code == 200, response.json()
        answers.append(response.json())
        assert answers[-1]["cache"] == expected, (model_id, pair, expected)

    # then: 3 hits, 6 real loads, 4 evictions (b, a, b, c), two models held
    stats = user_api.get("/api/v1/freqai/cache/stats").json()
    assert (stats["hits"], stats["misses"], stats["total_evictions"]) == (3, 6, 4)
    assert (stats["cached_models"], stats["max_cache_size"], stats["cache_hit_rate"]) == (2, 2, 33.3)
    assert stats["oldest_access"] <= stats["newest_access"] and stats["restarts"] == 0
    assert stats["walls"] == {"landlock": True, "seccomp": True} and "predictors" not in stats
    # a superuser sees the totals over the live predictors (one); another user, their own (none)
    totals = admin_api.get("/api/v1/freqai/cache/stats").json()
    assert totals == {**stats, "predictors": 1}
    assert other_api.get("/api/v1/freqai/cache/stats").json()["running"] is False

    # and a prediction is the model's on the latest stored candle, the same from a load and from the cache
    body = answers[0]
    version = pair_models(Path(settings.HOME) / "freqai" / str(first) / "1")[PAIRS[0]]
    candles = Path(settings.MARKETDATA["dir"]) / "replay" / "BTC_USDT-5m.feather"
    last = pd.read_feather(candles)["date"].iloc[-1]
    assert (body["status"], body["model_id"], body["model_version"]) == ("success", first, 1)
    assert body["model_path"] == f"freqai/{first}/1/{version.directory.name}"
    assert body["parameters"] == {"pair": PAIRS[0], "timeframe": "5m", "strategy": "FreqaiExampleStrategy"}
    values = body["predictions"]
    assert isinstance(values["prediction"], float) and values["labels"] == {"&-s_close": values["prediction"]}
    assert values["features_used"] == len(version.features())
    assert datetime.fromisoformat(values["candle"]) == last.to_pydatetime()
    assert values["do_predict"] in (0, 1) and (values["confidence"] == 0.0 if values["do_predict"] != 1 else
                                               0.0 <= values["confidence"] <= 1.0)  # fmt: skip
    assert answers[2]["predictions"] == values  # the hit: the same model, the same candles
    assert body["timings"]["load_seconds"] > 0 and answers[2]["timings"]["load_seconds"] == 0

    # and a candle appended to the stored ones is the next prediction's, with another value
    saved = candles.with_name("saved.feather")
    shutil.copyfile(candles, saved)
    try:
        frame = pd.read_feather(candles)
        row = frame.iloc[-1].copy()
        row["date"], row["close"] = row["date"] + timedelta(minutes=5), row["close"] * 1.05
        row["high"] = max(row["high"], row["close"])
        pd.concat([frame, row.to_frame().T], ignore_index=True).astype(frame.dtypes).to_feather(candles)
        moved = predict(user_api, first, PAIRS[0]).json()
    finally:
        os.replace(saved, candles)
    assert moved["cache"] == "hit"  # the model loaded once; only the candles are new
    assert datetime.fromisoformat(moved["predictions"]["candle"]) == (last + timedelta(minutes=5)).to_pydatetime()
    assert moved["predictions"]["prediction"] != values["prediction"]

    # and another user's model is no model of theirs; a pair or timeframe the model does not predict is a 422
    assert predict(other_api, first, PAIRS[0]).status_code == 404
    refused = predict(user_api, first, "XRP/USDT")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "pair"]
    refused = predict(user_api, first, PAIRS[0], timeframe="1h")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "timeframe"]
    assert user_api.get(f"{URL}{first}/predictions").json()["parameters"]["pair"] == PAIRS[0]  # its first pair

    # and a predictor killed mid-life is started again, and answers with a cache of its own
    handle = cache.predictors().get(user.pk)
    os.killpg(handle.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while handle.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    again = predict(user_api, second, PAIRS[1])
    assert again.status_code == 200 and again.json()["cache"] == "miss"
    assert again.json()["predictions"] == answers[6]["predictions"]
    stats = user_api.get("/api/v1/freqai/cache/stats").json()
    assert (stats["restarts"], stats["hits"], stats["misses"], stats["cached_models"]) == (1, 0, 1, 1)

    # and a request that takes longer than the timeout has the predictor's group killed: a 503
    process, handle.timeout = handle.process, 0.001
    try:
        slow = predict(user_api, first, PAIRS[1])
    finally:
        handle.timeout = settings.FREQAI["request_timeout_seconds"]
    assert slow.status_code == 503 and "no answer within" in slow.json()["detail"]
    assert process.poll() is not None and handle.process is None


def test_a_model_not_trained_yet_has_no_predictions_and_the_stats_name_no_model(
    market, freqai_strategy, user_api, other_user, other_api, small_cache
):
    response = user_api.post(URL, {"name": "untrained", "pairs": ["BTC/USDT"]}, format="json")
    model_id = response.json()["id"]

    refused = predict(user_api, model_id, "BTC/USDT")
    assert refused.status_code == 409 and "not trained yet" in refused.json()["detail"]
    assert predict(other_api, model_id, "BTC/USDT").status_code == 404
    assert user_api.get(f"{URL}999999/predictions").status_code == 404

    # the statistics of a predictor that never started: an empty cache, without starting one
    stats = other_api.get("/api/v1/freqai/cache/stats").json()
    assert stats == {"cached_models": 0, "max_cache_size": 2, "cache_hit_rate": 0.0, "oldest_access": None,
                     "newest_access": None, "total_evictions": 0, "hits": 0, "misses": 0, "since": None,
                     "running": False, "restarts": 0, "walls": {}, "predictor_started_at": None}  # fmt: skip
    assert cache.predictors().get(other_user.pk) is None


# What the hostile strategy tries inside the predictor, at its feature engineering of a prediction over
# PROBE_CANDLES candles (each outcome recorded, then raised as the request's error), and what it writes to
# every descriptor over FORGE_CANDLES candles (a forged answer) before predicting as the example does.
# Never in its training, nor over any other number of candles.
PROBE_CANDLES, FORGE_CANDLES = 401, 402
HOSTILE = """
import json as _json
import os as _os
import signal as _signal
import socket as _socket

_HOME, _SECRET, _DATABASE = {home!r}, {secret!r}, {database!r}


def _tried(action):
    try:
        action()
    except BaseException as exc:
        return type(exc).__name__
    return "done"


def _hostile(candles):
    if candles == {forge}:
        line = _json.dumps({{"ok": True, "id": None, "prediction": 424242.0, "labels": {{"&-s_close": 424242.0}},
                            "do_predict": 1, "DI_value": 0.0, "features_used": 1, "candle": "2020-01-01T00:00:00",
                            "cache": "hit", "load_seconds": 0.0, "predict_seconds": 0.0}}).encode() + b"\\n"
        for descriptor in range(3, 64):
            try:
                _os.write(descriptor, line)
            except OSError:
                pass
        return
    outcomes = {{
        "secret": _tried(lambda: open(_SECRET).read()),
        "database": _tried(lambda: open(_DATABASE, "rb").read(16)),
        "home": _tried(lambda: _os.listdir(_HOME)),
        "write": _tried(lambda: open(_os.path.join(_os.getcwd(), "written"), "w").write("x")),
        "write_descriptor": _tried(lambda: _os.open("written", _os.O_WRONLY | _os.O_CREAT, 0o600)),
        "socket": _tried(lambda: _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)),
        "kill": _tried(lambda: _os.kill(_os.getppid(), 0)),
        "pidfd_send_signal": _tried(lambda: _signal.pidfd_send_signal(_os.pidfd_open(_os.getppid()), 0)),
    }}
    raise RuntimeError("PROBES " + _json.dumps(outcomes))

"""


@pytest.fixture
def hostile_strategy(settings: Any) -> Iterator[dict[str, Path]]:
    """FreqaiExampleStrategy whose feature engineering, inside the predictor, tries what the walls refuse; the
    secret key and an SQLite database file of the home exist (a decoy one if the tests' database is elsewhere)."""
    import freqtrade

    from strategies.library import library_dir

    home = Path(settings.HOME)
    secret, database = home / "secret_key", home / "multibot.sqlite3"
    decoys = [path for path in (secret, database) if not path.exists()]
    for path in decoys:
        path.write_text("decoy")
    source = (Path(freqtrade.__file__).parent / "templates" / "FreqaiExampleStrategy.py").read_text()
    probes = HOSTILE.format(home=str(home), secret=str(secret), database=str(database), forge=FORGE_CANDLES)
    hostile = source.replace("class FreqaiExampleStrategy(", probes + "\nclass FreqaiHostileStrategy(").replace(
        '        dataframe["%-day_of_week"] = dataframe["date"].dt.dayofweek\n',
        '        if self.config["freqai"].get("identifier") == "predictor" and len(dataframe) in (401, 402):\n'
        "            _hostile(len(dataframe))\n"
        '        dataframe["%-day_of_week"] = dataframe["date"].dt.dayofweek\n',
    )
    assert hostile.count("_hostile(len(dataframe))") == 1 and hostile.count("class FreqaiHostileStrategy(") == 1
    path = library_dir() / "FreqaiHostileStrategy.py"
    path.write_text(hostile)
    yield {"secret": secret, "database": database}
    path.unlink(missing_ok=True)
    for decoy in decoys:
        decoy.unlink(missing_ok=True)


def test_a_hostile_strategy_in_the_predictor_reads_writes_connects_and_signals_nothing_and_forges_no_answer(
    market, hostile_strategy, user_api, small_cache, trained_model, settings
):
    # given: a model of the hostile strategy, trained for real, predicting as the example does
    model_id = trained_model(user_api, "hostile", "FreqaiHostileStrategy")
    first = predict(user_api, model_id, PAIRS[0])
    assert first.status_code == 200, first.json()
    honest = first.json()["predictions"]
    assert all(path.read_bytes() for path in hostile_strategy.values())  # readable here, out of the walls

    # when: its feature engineering tries, inside the predictor, what a strategy may not
    settings.FREQAI = {**settings.FREQAI, "prediction_candles": PROBE_CANDLES}
    tried = predict(user_api, model_id, PAIRS[0])

    # then: the request answers the strategy's error, with what each attempt gave (checked last, below)
    assert tried.status_code == 409, tried.json()
    outcomes = json.loads(re.search(r"PROBES (\{.*\})", tried.json()["detail"]).group(1))

    # when: it writes a forged answer to every descriptor it has, then predicts as the example does
    settings.FREQAI = {**settings.FREQAI, "prediction_candles": FORGE_CANDLES}
    forged = predict(user_api, model_id, PAIRS[0])

    # then: the forged answer never reaches the caller (the predictor is stopped: a 503)
    assert forged.status_code in (200, 503), forged.json()
    assert forged.status_code == 200 or "not the answer awaited" in forged.json()["detail"], forged.json()
    if forged.status_code == 200:
        assert forged.json()["predictions"]["prediction"] != 424242.0
    assert "424242" not in json.dumps(forged.json())

    # and the next request is answered truly, by a predictor loading the model again
    settings.FREQAI = {**settings.FREQAI, "prediction_candles": 500}
    again = predict(user_api, model_id, PAIRS[0])
    assert again.status_code == 200, again.json()
    assert again.json()["predictions"] == honest

    # and each attempt inside the predictor failed
    assert set(outcomes) == {"secret", "database", "home", "write", "write_descriptor", "socket", "kill",
                             "pidfd_send_signal"}  # fmt: skip
    assert {probe: outcome for probe, outcome in outcomes.items() if outcome == "done"} == {}, outcomes


def test_each_owner_has_a_predictor_reading_only_their_models_and_the_least_recently_used_makes_room(
    market, freqai_strategy, user, user_api, other_user, other_api, admin_api, small_cache, trained_model, settings
):
    from freqai.models import FreqaiModel
    from freqai.services import model_dir
    from jobs.services import job_dir

    # given: one predictor at most; a model of each of two users
    settings.FREQAI = {**settings.FREQAI, "predictors": 1}
    cache.predictor_reset()
    mine, theirs = trained_model(user_api, "mine"), trained_model(other_api, "theirs")

    # when: each asks a prediction of their model
    assert predict(user_api, mine, PAIRS[0]).status_code == 200
    own = cache.predictors().get(user.pk)
    assert own is not None and own.running and model_dir(mine).resolve() in own.roots
    assert model_dir(theirs).resolve() not in own.roots
    assert predict(other_api, theirs, PAIRS[0]).status_code == 200

    # then: the other's predictor is another process, reading their model only; the first one made room
    other = cache.predictors().get(other_user.pk)
    assert other is not None and other.running and model_dir(mine).resolve() not in other.roots
    assert cache.predictors().get(user.pk) is None and own.process is None and own.retired
    stats = user_api.get("/api/v1/freqai/cache/stats").json()
    assert (stats["running"], stats["cached_models"]) == (False, 0)
    assert other_api.get("/api/v1/freqai/cache/stats").json()["cached_models"] == 1
    totals = admin_api.get("/api/v1/freqai/cache/stats").json()
    assert (totals["predictors"], totals["cached_models"], totals["misses"]) == (1, 1, 1)

    # and a model of theirs made after their predictor started has it started again, able to read it
    later = trained_model(other_api, "later")
    assert model_dir(later).resolve() not in other.roots
    answer = predict(other_api, later, PAIRS[1])
    assert answer.status_code == 200 and answer.json()["cache"] == "miss"
    assert model_dir(later).resolve() in other.roots and other.restarts == 1

    # and a version whose training lost the strategy it ran (an operator's file gone from its job) is a 409
    cache.predictor_reset()
    job = FreqaiModel.objects.get(pk=later).versions.get().job
    shutil.rmtree(job_dir(job.pk) / "input")
    lost = predict(other_api, later, PAIRS[1])
    assert lost.status_code == 409 and "train it again" in lost.json()["detail"], lost.json()


def test_a_prediction_that_is_no_finite_number_is_none() -> None:
    from freqai import predictor

    assert [predictor._number(value) for value in (float("inf"), float("-inf"), float("nan"), 1.5, "up")] == [
        None, None, None, 1.5, "up"]  # fmt: skip
    assert cache._wrong_field({"ok": True, "id": "x"}, cache.PREDICTION_FIELDS) == "prediction"
