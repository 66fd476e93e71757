"""A bot that runs a FreqAI model: the rules of attaching one, its predictions, reload-model, and deleting a
model in use; then a real freqtrade bot on the replay exchange running a model trained by the job system."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from audit.models import AuditLog
from audit.resources import bot_resource, freqai_model_resource
from bots import workspace
from bots.models import Bot
from freqai.models import FreqaiModelVersion
from jobs import execution
from tests.factories import make_user
from tests.support.fleet import System

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/freqai/models/"
EAGER = "FreqaiEagerStrategy"  # tests/freqai/conftest.py: enters on the model's first trusted prediction
BOTS = "/api/v1/bots/"


def model_of(api: Any, name: str = "tiny", **fields: Any) -> int:
    """LightGBMRegressor on BTC/USDT (ETH/USDT its correlated pair): 2-day windows, 1-day predictions."""
    body = {"name": name, "model_type": "LightGBMRegressor", "pairs": ["BTC/USDT"],
            "include_corr_pairlist": ["ETH/USDT"], "train_period_days": 2, "backtest_period_days": 1,
            "label_period_candles": 12, "indicator_periods_candles": [10], **fields}  # fmt: skip
    response = api.post(MODELS, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def ready_version(model_id: int, version: int, pairs: list[str]) -> FreqaiModelVersion:
    """A version row as a finished training leaves it (the rules read only these fields; the bot test below
    runs on real artifacts)."""
    return FreqaiModelVersion.objects.create(model_id=model_id, version=version, pairs=pairs, ready_at=timezone.now(),
                                             artifacts_dir=f"freqai/{model_id}/{version}")  # fmt: skip


def bot_body(strategy: str = "FreqaiExampleStrategy", **fields: Any) -> dict[str, Any]:
    return {"name": f"ai{time.monotonic_ns()}", "strategy_name": strategy, "timeframe": "5m",
            "stake_amount": 100, "pair_whitelist": ["BTC/USDT"], **fields}  # fmt: skip


def refused(response: Any, status: int, field: str | None = None) -> str:
    assert response.status_code == status, response.json()
    detail = response.json()["detail"]
    if field is not None:
        assert detail[0]["loc"][-1] == field, detail
        return detail[0]["msg"]
    return detail


def test_a_bot_takes_only_a_ready_model_of_its_owner_that_fits_it(market, freqai_strategy, user_api, other_api):
    # given
    model_id = model_of(user_api)
    foreign = model_of(other_api, name="theirs")
    ready_version(foreign, 1, ["BTC/USDT"])

    # then: refused, each naming its field
    assert "no FreqAI model" in refused(user_api.post(BOTS, bot_body(freqai_model_id=foreign), format="json"), 422,
                                        "freqai_model_id")  # fmt: skip
    assert "train it first" in refused(user_api.post(BOTS, bot_body(freqai_model_id=model_id), format="json"), 422,
                                       "freqai_model_id")  # fmt: skip
    ready_version(model_id, 1, ["BTC/USDT"])
    ready_version(model_id, 2, ["BTC/USDT"])
    refused(user_api.post(BOTS, bot_body(freqai_model_id=model_id, strategy_name="SampleStrategy"), format="json"),
            422, "strategy_name")  # fmt: skip
    refused(user_api.post(BOTS, bot_body(freqai_model_id=model_id, timeframe="1m"), format="json"), 422, "timeframe")
    assert "ETH/USDT" in refused(user_api.post(BOTS, bot_body(freqai_model_id=model_id,
                                                              pair_whitelist=["BTC/USDT", "ETH/USDT"]),
                                               format="json"), 422, "pair_whitelist")  # fmt: skip

    # when: it fits
    created = user_api.post(BOTS, bot_body(freqai_model_id=model_id), format="json")

    # then: pinned to the newest ready version, audited
    assert created.status_code == 201, created.json()
    bot = created.json()
    assert (bot["freqai_model_id"], bot["freqai_version"]) == (model_id, 2)
    row = AuditLog.objects.filter(action=AuditLog.Action.BOT_CREATE, resource=bot_resource(bot["id"])).get()
    assert row.details["freqai_model_id"] == model_id and row.details["freqai_version"] == 2
    # a change that no longer fits the model is refused, a detach is taken
    refused(user_api.patch(f"{BOTS}{bot['id']}", {"timeframe": "1m"}, format="json"), 422, "timeframe")
    detached = user_api.patch(f"{BOTS}{bot['id']}", {"freqai_model_id": None}, format="json")
    assert detached.status_code == 200 and detached.json()["freqai_model_id"] is None
    attached = user_api.patch(f"{BOTS}{bot['id']}", {"freqai_model_id": model_id}, format="json")
    assert (attached.json()["freqai_model_id"], attached.json()["freqai_version"]) == (model_id, 2)
    # not while it is to run: the start is sent, its gateway may be preparing it now
    assert user_api.post(f"{BOTS}{bot['id']}/start").status_code == 202
    assert "stop it" in refused(user_api.patch(f"{BOTS}{bot['id']}", {"freqai_model_id": None}, format="json"), 409)


def test_predictions_and_reload_model_answer_only_for_a_bot_that_can(market, freqai_strategy, user_api, other_api):
    # given
    model_id = model_of(user_api)
    ready_version(model_id, 1, ["BTC/USDT"])
    bot = user_api.post(BOTS, bot_body(freqai_model_id=model_id), format="json").json()
    plain = user_api.post(BOTS, bot_body(strategy_name="SampleStrategy"), format="json").json()

    # then
    assert other_api.get(f"{BOTS}{bot['id']}/predictions").status_code == 404
    assert other_api.post(f"{BOTS}{bot['id']}/reload-model").status_code == 404
    assert "no FreqAI model" in refused(user_api.get(f"{BOTS}{plain['id']}/predictions"), 409)
    assert "no FreqAI model" in refused(user_api.post(f"{BOTS}{plain['id']}/reload-model"), 409)
    assert "stopped" in refused(user_api.get(f"{BOTS}{bot['id']}/predictions"), 409)
    refused(user_api.get(f"{BOTS}{bot['id']}/predictions?timeframe=1h"), 422, "timeframe")
    refused(user_api.get(f"{BOTS}{bot['id']}/predictions?pair=ETH/USDT"), 422, "pair")
    refused(user_api.get(f"{BOTS}{bot['id']}/predictions?strategy=SampleStrategy"), 422, "strategy")
    Bot.objects.filter(pk=bot["id"]).update(status="running", host="elsewhere")  # as that host's gateway reports it
    assert "elsewhere" in refused(user_api.get(f"{BOTS}{bot['id']}/predictions"), 503)
    Bot.objects.filter(pk=bot["id"]).update(status="stopped", host="")

    # when: a newer version is ready and the bot is stopped
    ready_version(model_id, 2, ["BTC/USDT"])
    reloaded = user_api.post(f"{BOTS}{bot['name']}/reload-model")

    # then: pinned to it, no restart needed, audited
    assert reloaded.status_code == 200, reloaded.json()
    body = reloaded.json()
    assert (body["status"], body["bot_name"], body["model_version"], body["previous_version"], body["restart"]) == (
        "model_reloaded", bot["name"], 2, 1, None)  # fmt: skip
    assert abs(datetime.fromisoformat(body["reload_time"]) - datetime.now(UTC)) < timedelta(seconds=30)
    assert Bot.objects.get(pk=bot["id"]).freqai_version == 2
    row = AuditLog.objects.get(action=AuditLog.Action.BOT_RELOAD_MODEL, resource=bot_resource(bot["id"]))
    assert (row.details["from_version"], row.details["to_version"], row.details["restarted"]) == (1, 2, False)

    # when: the newest version has no model of the bot's pair
    ready_version(model_id, 3, ["ETH/USDT"])

    # then: refused, the bot keeps what it runs
    assert "cannot take version 3" in refused(user_api.post(f"{BOTS}{bot['id']}/reload-model"), 409)
    assert Bot.objects.get(pk=bot["id"]).freqai_version == 2


def test_deleting_a_model_is_refused_while_a_bot_runs_it_and_detaches_stopped_ones(market, freqai_strategy,
                                                                                  user_api):  # fmt: skip
    # given
    model_id = model_of(user_api)
    ready_version(model_id, 1, ["BTC/USDT"])
    running = user_api.post(BOTS, bot_body(freqai_model_id=model_id), format="json").json()
    stopped = user_api.post(BOTS, bot_body(freqai_model_id=model_id), format="json").json()
    assert user_api.post(f"{BOTS}{running['id']}/start").status_code == 202

    # then
    assert running["name"] in refused(user_api.delete(f"{MODELS}{model_id}"), 409)
    assert user_api.post(f"{BOTS}{running['id']}/stop").status_code == 202  # desired stopped, its status stopped
    assert user_api.delete(f"{MODELS}{model_id}").status_code == 204
    assert [Bot.objects.get(pk=bot["id"]).freqai_model_id for bot in (running, stopped)] == [None, None]
    row = AuditLog.objects.get(action=AuditLog.Action.FREQAI_MODEL_DELETE, resource=freqai_model_resource(model_id))
    assert sorted(row.details["detached_bots"]) == sorted([running["name"], stopped["name"]])


def test_a_freqai_bots_history_keeps_datetime_dates_when_live_candles_are_appended(tmp_path):
    """FreqAI appends each live candle to the history it read from the bot's data directory; in the format the
    bot's config names, the joined dates stay datetimes (feather's would be objects with pandas 3, and the
    strategy's ``.dt`` features fail at the next retraining)."""
    import pandas as pd
    from freqtrade.data.converter import ohlcv_to_dataframe
    from freqtrade.data.history.datahandlers import get_datahandler
    from freqtrade.enums import CandleType

    from bots.ftconfig import BotApi, BotPaths, BotSpec, render_config

    spec = BotSpec(bot_id=1, name="ai", strategy="S", exchange={"pair_whitelist": ["BTC/USDT"]},
                   stake_currency="USDT", stake_amount=10.0, timeframe="5m", max_open_trades=1, dry_run=True,
                   dry_run_wallet=1000.0, freqaimodel="LightGBMRegressor", freqai={"enabled": True})  # fmt: skip
    config = render_config(spec, BotApi(1, "u", "p", "j", "w"), BotPaths("u", "s", "d", str(tmp_path)))
    step = 300_000
    candles = [[1_796_083_200_000 + step * i, 1.0, 1.0, 1.0, 1.0, 1.0] for i in range(4)]
    handler = get_datahandler(tmp_path, config["dataformat_ohlcv"])
    handler.ohlcv_store("BTC/USDT", "5m", ohlcv_to_dataframe(candles[:3], "5m", "BTC/USDT", fill_missing=False,
                                                             drop_incomplete=False), CandleType.SPOT)  # fmt: skip
    history = handler.ohlcv_load("BTC/USDT", "5m", timerange=None, candle_type=CandleType.SPOT)
    live = ohlcv_to_dataframe(candles, "5m", "BTC/USDT", fill_missing=False, drop_incomplete=False)
    joined = pd.concat([history, live.iloc[3:]], ignore_index=True)
    assert len(joined) == 4 and pd.api.types.is_datetime64_any_dtype(joined["date"]), joined.dtypes
    assert list(joined["date"].dt.dayofweek) == list(live["date"].dt.dayofweek)


# -- a real bot ---------------------------------------------------------------------------------------
def train(api: Any, model_id: int, timerange: str) -> int:
    response = api.post(f"{MODELS}{model_id}/train", {"timerange": timerange}, format="json")
    assert response.status_code == 202, response.json()
    job_id = int(response.json()["task_id"])
    assert execution.job_execute(job_id=job_id) == "completed"
    return response.json()["version"]


def replay_now(replay_url: str) -> datetime:
    """The stored time the replay plays now (its clock kept in its anchor, shared with this process)."""
    from marketdata.market import replay_market

    httpx.get(f"{replay_url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1}, timeout=10)
    market = replay_market()
    return datetime.fromtimestamp(market.stored_now() / 1000, UTC)


def wait(predicate: Any, timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def bot_trades(bot: Bot) -> list[dict[str, Any]]:
    """The bot's trades, open and closed, from its own freqtrade API."""
    from bots.ftclient import client_for as bot_client

    with bot_client(bot, timeout=10) as client:
        return [*client.status(), *client.trades()["trades"]]


def sub_trains(models: Path) -> set[str]:
    return {path.name for path in models.glob("sub-train-*") if path.is_dir()}


@pytest.mark.slow
@pytest.mark.embedded_only  # freqtrade and its files; the rules above (the database's part) run on both
@pytest.mark.django_db(transaction=True)  # the gateway and the listeners see the committed rows
def test_a_bot_trades_on_its_trained_model_predicts_retrains_on_schedule_and_reloads(
    committed_db, market, eager_freqai_strategy, tmp_path
):
    from tests.factories import client_for

    # given: a model trained up to the replay's present (its newest window trained on the 2 days before the
    # replay's current day began), on the wall clock the bot judges its age by
    user = make_user()
    api = client_for(user)
    day = replay_now(market).replace(hour=0, minute=0, second=0, microsecond=0)
    timerange = f"{day - timedelta(days=1):%Y%m%d}-{day + timedelta(days=1):%Y%m%d}"
    model_id = model_of(api, live_retrain_hours=48, strategy_name=EAGER)
    started = time.monotonic()
    assert train(api, model_id, timerange) == 1
    print(f"training v1: {time.monotonic() - started:.1f} s")
    bot = api.post(BOTS, bot_body(EAGER, freqai_model_id=model_id), format="json").json()
    assert bot["freqai_version"] == 1
    # Old enough to retrain about a minute after the bot starts, not before: its schedule, seen in the test.
    age = (replay_now(market) - day).total_seconds()
    assert api.patch(f"{MODELS}{model_id}", {"live_retrain_hours": (age + 60) / 3600}, format="json").status_code == 200
    system = System(market, tmp_path)
    try:
        # when
        started = time.monotonic()
        assert api.post(f"{BOTS}{bot['id']}/start").status_code == 202
        wait(lambda: Bot.objects.get(pk=bot["id"]).status == "running", 90, "the bot to run")
        answer = wait(lambda: (r := api.get(f"{BOTS}{bot['id']}/predictions")).status_code == 200 and r.json(), 60,
                      "its first prediction")  # fmt: skip
        print(f"start to first prediction: {time.monotonic() - started:.1f} s")

        # then: its config carries the model, it started on the installed artifacts without training
        space = workspace.workspace_for(bot["id"])
        config = json.loads(space.config.read_text())
        identifier = f"model-{model_id}-v1"
        assert (config["freqaimodel"], config["freqai"]["identifier"]) == ("LightGBMRegressor", identifier)
        assert config["strategy"] == f"{EAGER}Spot" and config["datadir"] == str(space.datadir)
        models = space.models / identifier
        installed = sub_trains(models)
        assert len(installed) == 1
        log = space.log.read_text(errors="replace")
        assert "Starting training" not in log, log[-3000:]
        prediction = answer["predictions"]
        assert isinstance(prediction["prediction"], float)
        assert prediction["confidence"] is not None and 0.0 <= prediction["confidence"] <= 1.0
        assert "%-day_of_week" in prediction["features_used"]
        assert (answer["model_id"], answer["model_version"]) == (model_id, 1)
        assert answer["parameters"] == {"pair": "BTC/USDT", "timeframe": "5m", "strategy": EAGER}
        path = Path(settings.HOME) / answer["model_path"]
        assert path.is_file() and path.parent.name in installed
        # and it trades on it: its entry comes from the model's trusted prediction (the strategy's only signal)
        try:
            trades = wait(lambda: bot_trades(Bot.objects.get(pk=bot["id"])), 60, "a trade on the model's prediction")
        except AssertionError:
            last = api.get(f"{BOTS}{bot['id']}/predictions").json()
            raise AssertionError(f"{last}\n{space.log.read_text(errors='replace')[-4000:]}") from None
        assert trades[0]["pair"] == "BTC/USDT" and trades[0]["enter_tag"] == "long", trades
        # made while the installed model predicted: FreqAI never ran without it (its null values, "No model
        # ready", are the only other source of a prediction column)
        assert "No model ready" not in space.log.read_text(errors="replace")
        print(f"start to its first trade: {time.monotonic() - started:.1f} s")
        # the model is in use: not deleted
        assert bot["name"] in refused(api.delete(f"{MODELS}{model_id}"), 409)

        # and a second version trains meanwhile
        assert train(api, model_id, timerange) == 2

        # then: on its schedule the bot retrains (a new window of its own beside the installed one)
        wait(lambda: sub_trains(models) - installed, 120, "the bot to retrain on its schedule", every=1)
        assert "Starting training BTC/USDT" in space.log.read_text(errors="replace")
        print(f"start to retrain: {time.monotonic() - started:.1f} s")

        # when: it reloads its model
        restarted = time.monotonic()
        reloaded = api.post(f"{BOTS}{bot['id']}/reload-model")

        # then: restarted on version 2
        assert reloaded.status_code == 202, reloaded.json()
        body = reloaded.json()
        assert (body["status"], body["model_version"], body["restart"]["status"]) == (
            "model_reloaded", 2, "restart_command_sent")  # fmt: skip
        wait(lambda: json.loads(space.config.read_text())["freqai"]["identifier"] == f"model-{model_id}-v2", 60,
             "its config to name version 2")  # fmt: skip
        answer = wait(lambda: (r := api.get(f"{BOTS}{bot['id']}/predictions")).status_code == 200
                      and r.json()["model_version"] == 2 and r.json(), 90, "a prediction of version 2")  # fmt: skip
        assert isinstance(answer["predictions"]["prediction"], float)
        assert not (space.models / identifier).exists()  # version 1's files went with it
        print(f"reload to a prediction of v2: {time.monotonic() - restarted:.1f} s")
    finally:
        api.post(f"{BOTS}{bot['id']}/stop")
        system.close()
