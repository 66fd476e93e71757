"""A backtest on a worker host without the manager's disk: the job fetches its candles from the live manager."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.services import Actor
from jobs import execution, services
from jobs.commands import JobStatus
from marketdata.models import CandleSet
from marketdata.selectors import candle_set_file
from marketdata.storage import file_checksum
from tests.jobs.conftest import timerange
from tests.support.processes import database_url, free_port, server_env, uvicorn_server

pytestmark = [pytest.mark.slow]


def record_checksums() -> None:
    """What the migration does for files written before checksums: the rows of the stored history get theirs."""
    for candle_set in CandleSet.objects.all():
        candle_set.sha256, candle_set.size = file_checksum(candle_set_file(candle_set))
        candle_set.save(update_fields=["sha256", "size"])


def test_a_backtest_on_a_host_without_the_candles_fetches_them_from_the_manager_and_completes(
    committed_db, market, crossing_strategy, user, settings, tmp_path
):
    # given: the manager (a live server on the home that stores the candles) and this process as a worker
    # on another host: its own empty candle directory, the manager's address
    record_checksums()
    manager_data = Path(settings.MARKETDATA["dir"]) / "replay"
    env = server_env(MULTIBOT_HOME=str(settings.HOME), DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL,
                     SECRET_KEY=settings.SECRET_KEY)  # fmt: skip
    worker_data = tmp_path / "worker" / "data"
    job = services.backtest_create(actor=Actor.system(), owner=user, strategy_name="Crossing", timeframe="5m",
                                   timerange=timerange(2), pairs=["BTC/USDT", "ETH/USDT"])  # fmt: skip
    with open(tmp_path / "manager.log", "w") as log, uvicorn_server(env, output=log) as manager:
        settings.MARKETDATA = {**settings.MARKETDATA, "dir": worker_data}
        settings.MANAGER = {**settings.MANAGER, "url": manager}

        # when
        outcome = execution.job_execute(job_id=job.pk)

    # then: it ran on the fetched files, which are the manager's, and only the ones it reads
    job.refresh_from_db()
    assert outcome == "completed", job.error + job.log_tail[-3000:]
    assert job.status == JobStatus.COMPLETED and job.results["summary"]["total_trades"] > 0
    fetched = sorted(path.name for path in (worker_data / "replay").iterdir())
    assert fetched == ["BTC_USDT-5m.feather", "ETH_USDT-5m.feather"]
    for name in fetched:
        assert (worker_data / "replay" / name).read_bytes() == (manager_data / name).read_bytes()


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
