"""A backtest through the job system: the real freqtrade backtesting, its results read from its own file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from audit.services import Actor
from jobs import execution, services
from jobs.commands import JobStatus, Report
from jobs.models import Job
from marketdata.replay_config import replay_exchange_section
from multibot.redis_client import redis_client
from streams.bus import stream_key
from streams.catalog import BACKTESTING_RESULTS
from tests.jobs.conftest import timerange
from tests.support.processes import server_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def direct_backtest(tmp_path, replay_url, strategy, pairs, timerange_text):
    """``freqtrade backtesting`` run by hand on the same candles, markets and settings."""
    from freqtrade.data.btanalysis import load_backtest_stats

    from jobs.backtest import render_config

    (tmp_path / "user_data" / "strategies").mkdir(parents=True)
    (tmp_path / "user_data" / "strategies" / strategy.name).write_text(strategy.read_text())
    parameters = {"max_open_trades": 3, "stake_currency": "USDT", "stake_amount": 100.0, "dry_run_wallet": 1000.0,
                  "timeframe": "5m"}  # fmt: skip
    config = render_config(parameters, exchange_section=replay_exchange_section(pairs, replay_url))
    (tmp_path / "config.json").write_text(json.dumps(config))
    results = tmp_path / "results"
    results.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "freqtrade", "backtesting", "-c", str(tmp_path / "config.json"),
         "--userdir", str(tmp_path / "user_data"), "--datadir", str(settings.MARKETDATA["dir"] / "replay"),
         "--strategy", "Crossing", "--timeframe", "5m", "--timerange", timerange_text, "--export", "trades",
         "--backtest-directory", str(results), "--cache", "none"],
        capture_output=True, text=True, timeout=300, env=server_env(), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return load_backtest_stats(results)["strategy"]["Crossing"]


def test_a_backtest_job_reports_exactly_what_freqtrade_backtesting_reports_on_the_same_inputs(
    market, crossing_strategy, user, user_api, tmp_path
):
    # given
    window = timerange(3)
    job = services.backtest_create(actor=Actor.system(), owner=user, strategy_name="Crossing", timeframe="5m",
                                   timerange=window, pairs=["BTC/USDT", "ETH/USDT"])  # fmt: skip

    # when
    outcome = execution.job_execute(job_id=job.pk)

    # then
    job.refresh_from_db()
    assert outcome == "completed", job.error + job.log_tail[-3000:]
    assert (job.status, job.attempt, job.progress) == (JobStatus.COMPLETED, 1, 1.0)
    direct = direct_backtest(tmp_path, market, crossing_strategy, ["BTC/USDT", "ETH/USDT"], window)
    summary = job.results["summary"]
    assert direct["total_trades"] > 0
    assert summary["total_trades"] == direct["total_trades"]
    assert summary["profit_total_abs"] == pytest.approx(direct["profit_total_abs"], abs=1e-9)
    assert summary["wins"] + summary["draws"] + summary["losses"] == summary["total_trades"]
    assert len(job.results["trades"]) == summary["total_trades"]
    assert {row["key"] for row in job.results["results_per_pair"]} >= {"BTC/USDT", "ETH/USDT"}
    curve = job.results["equity_curve"]
    assert curve[-1]["balance"] == pytest.approx(summary["starting_balance"] + summary["profit_total_abs"])
    assert (curve[0]["profit_abs"], curve[-1]["profit_abs"]) == (0.0, pytest.approx(summary["profit_total_abs"]))
    assert len(curve) == summary["total_trades"] + 1
    # freqtrade's own progress tracker was reported as it went, then the end.
    reports = [(fields["type"], json.loads(fields["payload"]))
               for _, fields in redis_client().xrange(stream_key(BACKTESTING_RESULTS))]  # fmt: skip
    progress = [payload["progress"] for kind, payload in reports if kind == Report.JOB_PROGRESS]
    assert len(progress) >= 3 and progress == sorted(progress) and 0 < progress[-1] <= 1
    assert {payload["step"] for kind, payload in reports if kind == Report.JOB_PROGRESS} >= {"dataload", "backtest"}
    assert reports[-1] == (Report.JOB_RESULT, {"job_id": job.pk, "attempt": 1, "status": "completed", "error": "",
                                               "at": reports[-1][1]["at"]})  # fmt: skip
    # Side by side with another (queued) backtest, through the API.
    other = services.backtest_create(actor=Actor.system(), owner=user, strategy_name="Crossing", timeframe="5m",
                                     timerange=timerange(1))  # fmt: skip
    compared = user_api.get(f"/api/v1/strategies/backtest/compare?ids={job.pk},{other.pk}").json()["backtests"]
    assert [(item["task_id"], item["status"]) for item in compared] == [(str(job.pk), "completed"),
                                                                        (str(other.pk), "queued")]  # fmt: skip
    assert compared[0]["summary"]["total_trades"] == direct["total_trades"] and compared[1]["summary"] is None
    # The job's own copy of the strategy, in its own directory, is what ran.
    assert (services.job_dir(job.pk) / "attempt-1" / "user_data" / "strategies" / "crossing.py").exists()


def test_a_claimed_job_cannot_be_claimed_again(market, crossing_strategy, user):
    job = services.backtest_create(actor=Actor.system(), owner=user, strategy_name="Crossing", timeframe="5m",
                                   timerange=timerange(1))  # fmt: skip

    first = services.job_claim(job_id=job.pk, host="a")
    second = services.job_claim(job_id=job.pk, host="b")

    assert first is not None and second is None
    assert Job.objects.get(pk=job.pk).worker_host == "a"
    # A second delivery of the task finds the job taken and starts nothing.
    assert execution.job_execute(job_id=job.pk) == "not_claimed"
