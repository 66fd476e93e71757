"""A FreqAI training through the job system: freqtrade backtesting --freqaimodel, its artifacts and metrics."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings

from freqai.artifacts import ArtifactsError, install_live, pair_models
from freqai.models import FreqaiModelVersion
from jobs import execution
from jobs.commands import JobStatus
from jobs.models import Job
from tests.jobs.conftest import backtest_processes, history_end

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

URL = "/api/v1/freqai/models/"


def tiny_model(api) -> int:
    """LightGBMRegressor on BTC/USDT with ETH/USDT as its correlated pair: 2-day windows, 1-day predictions."""
    response = api.post(URL, {"name": "tiny", "model_type": "LightGBMRegressor", "pairs": ["BTC/USDT"],
                              "include_corr_pairlist": ["ETH/USDT"], "train_period_days": 2,
                              "backtest_period_days": 1, "label_period_candles": 12,
                              "indicator_periods_candles": [10]}, format="json")  # fmt: skip
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def train(api, model_id: int) -> Job:
    from datetime import timedelta

    end = history_end() - timedelta(days=1)
    window = f"{end - timedelta(days=2):%Y%m%d}-{end:%Y%m%d}"  # two one-day windows
    response = api.post(f"{URL}{model_id}/train", {"timerange": window}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["model_id"]) == ("training_started", model_id)
    return Job.objects.get(pk=int(body["task_id"]))


def test_a_training_completes_with_real_artifacts_and_metrics(
    market, freqai_strategy, user_api, django_capture_on_commit_callbacks, tmp_path
):
    # given
    model_id = tiny_model(user_api)
    job = train(user_api, model_id)
    assert job.kind == Job.Kind.FREQAI_TRAINING
    assert user_api.post(f"{URL}{model_id}/train", {}, format="json").status_code == 409  # one at a time
    assert user_api.delete(f"{URL}{model_id}").status_code == 409  # not while it trains

    # when
    started = time.monotonic()
    outcome = execution.job_execute(job_id=job.pk)
    seconds = time.monotonic() - started

    # then
    job.refresh_from_db()
    assert outcome == "completed", job.error + job.log_tail[-3000:]
    status = user_api.get(f"{URL}{model_id}/status").json()
    assert (status["status"], status["version"], status["training"]["progress"]) == ("completed", 1, 1.0)
    assert status["trained_pairs"] == ["BTC/USDT"]
    assert len(status["windows"]) == 2  # two one-day windows, each its own model
    home = Path(settings.HOME)
    directory = home / status["artifacts_dir"]
    assert directory == home / "freqai" / str(model_id) / "1" and (directory / "manifest.json").is_file()
    for item in status["artifacts"]:
        assert (directory / item["path"]).stat().st_size == item["size"]
    assert sum(1 for item in status["artifacts"] if item["path"].endswith("_model.joblib")) == 2
    metrics = status["metrics"]
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["predictions_scored"] > 200
    assert metrics["total_trades"] == job.results["summary"]["total_trades"]
    assert metrics["profit_factor"] == job.results["summary"]["profit_factor"]
    listed = user_api.get(f"{URL}{model_id}").json()
    assert listed["backtest_results"]["accuracy"] == metrics["accuracy"]
    assert status["training_seconds"] > 0
    print(f"training took {seconds:.1f} s")

    # each pair's newest window, as a live bot's FreqAI would load it from a copy
    newest = pair_models(directory)
    assert list(newest) == ["BTC/USDT"] and newest["BTC/USDT"].trained_timestamp == max(
        int(datetime.fromisoformat(window["trained_until"]).timestamp()) for window in status["windows"]
    )
    assert "%-day_of_week" in newest["BTC/USDT"].features() and newest["BTC/USDT"].labels() == ["&-s_close"]
    target = tmp_path / "user_data" / "models" / "model-copy"
    installed = install_live(directory, target, pairs=["BTC/USDT"])["BTC/USDT"]
    recorded = json.loads((target / "pair_dictionary.json").read_text())["BTC/USDT"]
    assert recorded["data_path"] == str(installed.directory) and installed.directory.parent == target
    assert (installed.directory / f"{installed.model_filename}_model.joblib").is_file()
    with pytest.raises(ArtifactsError, match="no model for ETH/USDT"):
        install_live(directory, target, pairs=["ETH/USDT"])

    # and deleting the model removes its artifacts
    with django_capture_on_commit_callbacks(execute=True):
        assert user_api.delete(f"{URL}{model_id}").status_code == 204
    assert not directory.parent.exists()


@pytest.mark.django_db(transaction=True)  # the run's thread sees the committed job
def test_a_cancelled_training_leaves_no_process_and_no_ready_version(
    committed_db, market, freqai_strategy, user, user_api
):
    import threading

    from audit.services import Actor
    from jobs import services

    model_id = tiny_model(user_api)
    job = train(user_api, model_id)
    runner = threading.Thread(target=execution.job_execute, kwargs={"job_id": job.pk})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not backtest_or_training_running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert backtest_or_training_running(), "the training never started"
        services.job_cancel(actor=Actor.system(), job=Job.objects.get(pk=job.pk))
    finally:
        runner.join(timeout=60)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert not backtest_or_training_running()
    version = FreqaiModelVersion.objects.get(model_id=model_id)
    assert (version.status, version.ready_at) == ("cancelled", None)
    assert not (Path(settings.HOME) / "freqai" / str(model_id) / "1").exists()
    assert user_api.get(f"{URL}{model_id}/status").json()["status"] == "cancelled"


def backtest_or_training_running() -> bool:
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if "freqai.training_entry" in cmdline and str(settings.HOME) in " ".join(cmdline):
            return True
    return bool(backtest_processes())
