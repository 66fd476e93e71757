"""A first FreqAI training on what ``make run`` stores: a model created with its defaults, trained on its default
timerange through the job system, on the demo candles and the replay exchange that plays them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings

from freqai.models import FreqaiModelVersion
from jobs import execution
from jobs.models import Job
from marketdata.services import demo_data_ensure
from tests.support.replay import replay_exchange

# Demo candles and a freqtrade training: files and a subprocess (the job's rows are the job tests', on both databases).
pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.embedded_only]

URL = "/api/v1/freqai/models/"


@pytest.fixture
def demo_market(settings, tmp_path):
    """The demo candles as the bootstrap stores them (its own step, its days), in a data directory of their
    own, and the replay exchange serving them; its address in settings. Jobs get a directory of their own too:
    the test database numbers them from 1 again, and FreqAI would reuse another test's models left there."""
    home = tmp_path / "home"
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": home / "data"}
    settings.JOBS = {**settings.JOBS, "dir": home / "jobs"}
    demo_data_ensure(days=settings.MARKETDATA["demo_days"])
    with replay_exchange(home) as url:
        settings.REPLAY_EXCHANGE_URL = url
        yield url


def test_a_model_with_only_a_name_trains_on_the_demo_data_to_a_ready_version(
    demo_market, freqai_strategy, user_api, django_capture_on_commit_callbacks
):
    # given: a model of defaults only
    created = user_api.post(URL, {"name": "first"}, format="json")
    assert created.status_code == 201, created.json()
    model = created.json()
    assert (model["pairs"], model["include_corr_pairlist"]) == (["BNB/USDT"], ["BTC/USDT"])  # the first two stored
    assert (model["timeframe"], model["include_timeframes"]) == ("5m", ["5m", "15m", "1h"])
    assert (model["train_period_days"], model["backtest_period_days"]) == (7, 1.0)

    # when: trained on its default timerange, by the job system's own execution
    response = user_api.post(f"{URL}{model['id']}/train", {}, format="json")
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=int(response.json()["task_id"]))
    started = time.monotonic()
    outcome = execution.job_execute(job_id=job.pk)
    seconds = time.monotonic() - started

    # then: a ready version with one model per window, trained on every timeframe it includes
    job.refresh_from_db()
    assert outcome == "completed", job.error + job.log_tail[-3000:]
    version = FreqaiModelVersion.objects.get(model_id=model["id"], version=1)
    assert version.ready_at is not None and version.pairs == ["BNB/USDT"]
    assert len(version.windows) == 2  # the default timerange: two backtest_period_days windows
    status = user_api.get(f"{URL}{model['id']}/status").json()
    assert (status["status"], status["version"]) == ("completed", 1)
    assert 0.0 <= status["metrics"]["accuracy"] <= 1.0 and status["metrics"]["predictions_scored"] > 200
    directory = Path(settings.HOME) / status["artifacts_dir"]
    features = next(directory.glob("sub-train-BNB_*/*_metadata.json")).read_text()
    for timeframe in ("5m", "15m", "1h"):
        assert f"_BNB/USDT_{timeframe}" in features and f"_BTC/USDT_{timeframe}" in features
    print(f"the default training on the demo data took {seconds:.1f} s")

    # and deleting it leaves no artifacts in the home the other tests share
    with django_capture_on_commit_callbacks(execute=True):
        assert user_api.delete(f"{URL}{model['id']}").status_code == 204
    assert not directory.parent.exists()
