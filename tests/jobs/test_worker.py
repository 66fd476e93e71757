"""Jobs through real Celery workers (``celery -A multibot worker``) on the test's Redis and database."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from jobs import services
from jobs.commands import JobStatus
from tests.jobs.conftest import backtest_processes, celery_worker, timerange, wait_for_job, worker_env

pytestmark = [pytest.mark.slow]


def start(api, strategy: str, days: int = 2) -> int:
    response = api.post("/api/v1/strategies/backtest", {"strategy_name": strategy, "timeframe": "5m",
                                                         "timerange": timerange(days)}, format="json")  # fmt: skip
    assert response.status_code == 202, response.json()
    return int(response.json()["task_id"])


def test_a_celery_worker_runs_a_backtest_from_the_api_to_its_results(committed_db, market, crossing_strategy, user_api):
    with celery_worker(worker_env(market), name="w1"):
        # when
        job_id = start(user_api, "Crossing")

        # then
        job = wait_for_job(job_id, lambda job: job.is_finished, 120, "the backtest to finish")
    assert (job.status, job.attempt, job.progress) == (JobStatus.COMPLETED, 1, 1.0), job.error
    assert job.worker_host.split(":")[0] == os.uname().nodename
    result = user_api.get(f"/api/v1/strategies/backtest/{job_id}?per_page=5").json()
    assert result["status"] == "completed"
    assert result["summary"]["total_trades"] > 0
    assert result["trades"]["total"] == result["summary"]["total_trades"]
    assert len(result["trades"]["items"]) == min(5, result["summary"]["total_trades"])
    assert result["equity_curve"][0]["balance"] == result["summary"]["starting_balance"]
    assert user_api.get(f"/api/v1/jobs/{job_id}/logs").json()["logs"]


def test_a_cancelled_running_backtest_ends_cancelled_and_leaves_no_freqtrade_process(
    committed_db, market, sleepy_strategy, user_api
):
    with celery_worker(worker_env(market), name="w2"):
        job_id = start(user_api, "Sleepy")
        wait_for_job(job_id, lambda job: job.status == JobStatus.RUNNING and backtest_processes(), 90,
                     "the backtest to run")  # fmt: skip
        pids = [process.pid for process in backtest_processes()]

        # when
        cancelled_at = time.monotonic()
        response = user_api.post(f"/api/v1/jobs/{job_id}/cancel")

        # then
        assert response.status_code == 202 and response.json()["status"] == "cancel_requested"
        job = wait_for_job(job_id, lambda job: job.is_finished, 20, "the cancelled job to end")
        took = time.monotonic() - cancelled_at
    assert job.status == JobStatus.CANCELLED, job.error
    assert took < 10
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    assert backtest_processes() == []


def test_a_worker_killed_mid_backtest_leaves_its_job_run_again_to_completion(
    committed_db, market, sleepy_strategy, user_api
):
    env = worker_env(market)
    with celery_worker(env, name="w3") as worker:
        job_id = start(user_api, "Sleepy")
        wait_for_job(job_id, lambda job: job.status == JobStatus.RUNNING and backtest_processes(), 90,
                     "the backtest to run")  # fmt: skip
        pids = [process.pid for process in backtest_processes()]

        # when: the whole worker (main process and pool) dies at once
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    # then: its freqtrade dies with it, and the job is not left running once the reaper looks
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and backtest_processes():
        time.sleep(0.2)
    assert backtest_processes() == [], pids
    assert services.jobs_reap(now=timezone.now() + timedelta(minutes=5))["requeued"] == 1
    sleepy_strategy.unlink()  # the next attempt runs straight through
    with celery_worker(env, name="w4"):
        job = wait_for_job(job_id, lambda job: job.is_finished, 120, "the re-run to finish")
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 2), job.error
