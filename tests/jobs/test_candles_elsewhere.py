"""A backtest on a worker host without the manager's disk: the job fetches what it needs from the live manager."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit.services import Actor
from jobs import execution, services
from jobs.commands import JobStatus
from marketdata.models import CandleSet
from marketdata.selectors import candle_set_file
from marketdata.storage import file_checksum
from strategies.library import version_path
from strategies.services import strategy_upload
from tests.jobs.conftest import TUNABLE, celery_worker, timerange, wait_for_job, worker_env
from tests.support.processes import database_url, free_port, server_env, uvicorn_server

pytestmark = [pytest.mark.slow]


def record_checksums() -> None:
    """What the migration does for files written before checksums: the rows of the stored history get theirs."""
    for candle_set in CandleSet.objects.all():
        candle_set.sha256, candle_set.size = file_checksum(candle_set_file(candle_set))
        candle_set.save(update_fields=["sha256", "size"])


def as_worker_host(settings: Any, home: Path, manager: str) -> None:
    """This process becomes a worker on another machine: its own empty home (candles, jobs, strategies),
    sharing only the database, Redis and SECRET_KEY with the manager at ``manager``."""
    settings.HOME = home
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": home / "data"}
    settings.JOBS = {**settings.JOBS, "dir": home / "jobs"}
    settings.MANAGER = {**settings.MANAGER, "url": manager}


def test_a_backtest_on_a_host_without_the_managers_disk_fetches_its_candles_and_strategy_and_completes(
    committed_db, market, user, settings, tmp_path
):
    # given: a version of a strategy with its parameter file, and a backtest of it, made on the web host
    # (the manager, a live server on the home that stores the candles and the code)
    version, _ = strategy_upload(actor=Actor.system(), owner=user, filename="tunable.py", data=TUNABLE.encode(),
                                 parameters=json.dumps({"params": {"buy": {"fast_period": 7}}}).encode())  # fmt: skip
    record_checksums()
    manager_data = Path(settings.MARKETDATA["dir"]) / "replay"
    code = version_path(version.sha256).read_bytes()
    job = services.backtest_create(actor=Actor.system(), owner=user, strategy_name="Tunable", timeframe="5m",
                                   timerange=timerange(2), pairs=["BTC/USDT", "ETH/USDT"])  # fmt: skip
    env = server_env(MULTIBOT_HOME=str(settings.HOME), DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL,
                     SECRET_KEY=settings.SECRET_KEY)  # fmt: skip
    worker = tmp_path / "worker"
    with open(tmp_path / "manager.log", "w") as log, uvicorn_server(env, output=log) as manager:
        as_worker_host(settings, worker, manager)

        # when
        outcome = execution.job_execute(job_id=job.pk)

    # then: it ran on the fetched files, which are the manager's, and only the ones it reads
    job.refresh_from_db()
    assert outcome == "completed", job.error + job.log_tail[-3000:]
    assert job.status == JobStatus.COMPLETED and job.results["summary"]["total_trades"] > 0
    fetched = sorted(path.name for path in (worker / "data" / "replay").iterdir())
    assert fetched == ["BTC_USDT-5m.feather", "ETH_USDT-5m.feather"]
    for name in fetched:
        assert (worker / "data" / "replay" / name).read_bytes() == (manager_data / name).read_bytes()
    # and on the job's input rebuilt here: the version's code, verified, and its own parameter file
    stored = worker / "strategies" / "versions" / f"{version.sha256}.py"
    assert stored.read_bytes() == code and stored.stat().st_mode & 0o777 == 0o400
    given = worker / "jobs" / str(job.pk) / "input"
    assert (given / "Tunable.py").read_bytes() == code
    assert json.loads((given / "Tunable.json").read_text())["params"] == {"buy": {"fast_period": 7}}


def test_a_celery_worker_on_another_home_runs_a_backtest_from_the_api_with_what_it_fetched(
    committed_db, market, user, user_api, settings, tmp_path
):
    # given: a live manager on the home that stores everything, and a real Celery worker whose
    # MULTIBOT_HOME is another, empty directory: only the database, Redis and SECRET_KEY are shared
    version, _ = strategy_upload(actor=Actor.system(), owner=user, filename="tunable.py", data=TUNABLE.encode())
    record_checksums()
    env = server_env(MULTIBOT_HOME=str(settings.HOME), DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL,
                     SECRET_KEY=settings.SECRET_KEY)  # fmt: skip
    worker = tmp_path / "worker"
    with open(tmp_path / "manager.log", "w") as log, uvicorn_server(env, output=log) as manager:
        worker_process_env = {**worker_env(market), "MULTIBOT_HOME": str(worker), "MULTIBOT_MANAGER_URL": manager,
                              "SECRET_KEY": settings.SECRET_KEY}  # fmt: skip
        with celery_worker(worker_process_env, name="elsewhere"):
            # when
            response = user_api.post("/api/v1/strategies/backtest", {"strategy_name": "Tunable", "timeframe": "5m",
                                     "timerange": timerange(2), "pairs": ["BTC/USDT"]}, format="json")  # fmt: skip
            assert response.status_code == 202, response.json()
            job = wait_for_job(int(response.json()["task_id"]), lambda job: job.is_finished, 120, "the backtest")

    # then: it completed there, on the candles and code it fetched into its own home
    assert job.status == JobStatus.COMPLETED, job.error + job.log_tail[-3000:]
    assert job.results["summary"]["total_trades"] > 0
    assert sorted(path.name for path in (worker / "data" / "replay").iterdir()) == ["BTC_USDT-5m.feather"]
    assert (worker / "strategies" / "versions" / f"{version.sha256}.py").exists()
    assert (worker / "jobs" / str(job.pk) / "attempt-1" / "results.json").exists()


def test_a_backtest_whose_candles_cannot_be_fetched_fails_before_freqtrade_starts(
    committed_db, market, crossing_strategy, user, settings, tmp_path
):
    # given: a worker host without the candles, and no manager where it looks for one
    record_checksums()
    settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "worker" / "data"}
    settings.MANAGER = {**settings.MANAGER, "url": f"http://127.0.0.1:{free_port()}"}
    job = services.backtest_create(actor=Actor.system(), owner=user, strategy_name="Crossing", timeframe="5m",
                                   timerange=timerange(1))  # fmt: skip

    # when
    outcome = execution.job_execute(job_id=job.pk)

    # then
    job.refresh_from_db()
    assert outcome == "failed"
    assert job.error.startswith("CandleFetchError: The replay BTC/USDT 5m candles could not be fetched")
    assert not (execution.attempt_dir(job) / "job.log").exists()  # freqtrade never started


def test_a_job_of_an_operators_strategy_file_fails_clearly_on_a_host_without_it(
    committed_db, market, crossing_strategy, user, settings, tmp_path
):
    # given: a backtest of a file an operator placed on the web host, run by a worker elsewhere
    job = services.backtest_create(actor=Actor.system(), owner=user, strategy_name="Crossing", timeframe="5m",
                                   timerange=timerange(1))  # fmt: skip
    as_worker_host(settings, tmp_path / "worker", f"http://127.0.0.1:{free_port()}")

    # when
    outcome = execution.job_execute(job_id=job.pk)

    # then
    job.refresh_from_db()
    assert outcome == "failed"
    assert job.error.startswith("JobInputMissing: The job's strategy file 'crossing.py' is not on this host"), job.error
