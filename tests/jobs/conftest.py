"""Fixtures of the job tests: stored candles, the replay exchange that serves their markets, a strategy."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings

from marketdata.models import CandleSet
from marketdata.storage import resample
from strategies.library import library_dir
from tests.support.market import store_history
from tests.support.replay import replay_exchange

# Crosses of two short moving averages: on the random walk of tests.support.market it trades often.
CROSSING = """
import talib.abstract as ta
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class Crossing(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.02}
    stoploss = -0.03
    startup_candle_count = 30

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["fast"] = ta.EMA(dataframe, timeperiod=5)
        dataframe["slow"] = ta.EMA(dataframe, timeperiod=20)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        up = (dataframe["fast"] > dataframe["slow"]) & (dataframe["fast"].shift(1) <= dataframe["slow"].shift(1))
        dataframe.loc[up, "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        down = (dataframe["fast"] < dataframe["slow"]) & (dataframe["fast"].shift(1) >= dataframe["slow"].shift(1))
        dataframe.loc[down, "exit_long"] = 1
        return dataframe
"""
HISTORY_DAYS = 20


def history_end() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def timerange(days: int = 3, *, ago: int = 1) -> str:
    """A short timerange inside the stored history: ``days`` days ending ``ago`` days before its end."""
    end = history_end() - timedelta(days=ago)
    return f"{end - timedelta(days=days):%Y%m%d}-{end:%Y%m%d}"


@pytest.fixture(scope="session")
def history() -> dict[str, pd.DataFrame]:
    """20 days of 1m and 5m candles of BTC/USDT and ETH/USDT in this test run's own home."""
    return store_history(Path(settings.MARKETDATA["dir"]) / "replay", days=HISTORY_DAYS, end=history_end())


@pytest.fixture(scope="session")
def replay_url(history: dict[str, pd.DataFrame]) -> Iterator[str]:
    with replay_exchange(Path(settings.HOME)) as url:
        yield url


@pytest.fixture
def candle_sets(history: dict[str, pd.DataFrame], db: Any) -> None:
    """The stored candles recorded (CandleSet rows), as an upload would."""
    for pair, frame in history.items():
        for timeframe, candles in (("1m", frame), ("5m", resample(frame, "5m"))):
            CandleSet.objects.update_or_create(
                exchange="replay", pair=pair, timeframe=timeframe,
                defaults={"start": candles["date"].iloc[0], "end": candles["date"].iloc[-1],
                          "records": len(candles), "source": CandleSet.Source.UPLOAD},
            )  # fmt: skip


@pytest.fixture
def market(replay_url: str, candle_sets: None, settings: Any) -> str:
    """Recorded candles and the replay exchange that serves their markets, its address in settings."""
    settings.REPLAY_EXCHANGE_URL = replay_url
    return replay_url


@pytest.fixture(scope="session")
def crossing_strategy() -> Path:
    path = library_dir() / "crossing.py"
    path.write_text(CROSSING)
    return path


# Sleeps in populate_indicators while its hold file exists (at most two minutes): a real freqtrade
# backtest that is running, for as long as a test needs, and then finishes like any other.
SLEEPY = """
import time
from pathlib import Path
from pandas import DataFrame
from freqtrade.strategy import IStrategy

HOLD = Path({hold!r})


class Sleepy(IStrategy):
    timeframe = "5m"
    minimal_roi = {{"0": 0.02}}
    stoploss = -0.03

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        deadline = time.monotonic() + 120
        while HOLD.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
"""


@pytest.fixture
def sleepy_strategy(tmp_path: Path) -> Iterator[Path]:
    """The Sleepy strategy in the library; its hold file exists until the test removes it (or ends)."""
    hold = tmp_path / "hold"
    hold.write_text("")
    path = library_dir() / "sleepy.py"
    path.write_text(SLEEPY.format(hold=str(hold)))
    yield hold
    hold.unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def worker_env(replay_url: str, **extra: str) -> dict[str, str]:
    """What a Celery worker process of this test needs: the test's database, Redis, home and replay."""
    from tests.support.processes import database_url, server_env

    return server_env(DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL, MULTIBOT_HOME=str(settings.HOME),
                      MULTIBOT_REPLAY_URL=replay_url, MULTIBOT_JOB_HEARTBEAT_SECONDS="1", **extra)  # fmt: skip


@contextlib.contextmanager
def celery_worker(env: dict[str, str], *, name: str, concurrency: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A multibot worker`` as a real process in its own session; killed (the group) on exit."""
    from tests.support.processes import ROOT

    log = Path(settings.HOME) / f"celery-{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "multibot", "worker", "--pool", "prefork", "--concurrency",
         str(concurrency), "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for_job(job_id: int, condition: Any, timeout: float, what: str) -> Any:
    """Poll the job's row (committed by another process) until ``condition(job)``; returns the job."""
    from jobs.models import Job
    from tests.support.processes import wait_for

    found: list[Any] = []

    def check() -> bool:
        job = Job.objects.get(pk=job_id)
        found[:] = [job]
        return bool(condition(job))

    try:
        wait_for(check, timeout, what)
    except AssertionError:
        job = found[0] if found else None
        raise AssertionError(f"{what}: job is {job and job.status} ({job and job.error}); "
                             f"{job and job.log_tail[-2000:]}") from None  # fmt: skip
    return found[0]


def backtest_processes() -> list[Any]:
    """Every process of this machine running jobs.backtest_entry (a job's freqtrade)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if "jobs.backtest_entry" in cmdline and str(settings.HOME) in " ".join(cmdline):
            found.append(process)
    return found


# Crossing with its fast average's period and its ROI as hyperoptable parameters (buy and sell spaces).
TUNABLE = (
    CROSSING.replace("class Crossing(IStrategy):", "class Tunable(IStrategy):")
    .replace(
        "from freqtrade.strategy import IStrategy",
        "from freqtrade.strategy import IStrategy, IntParameter, DecimalParameter",
    )
    .replace(
        "    startup_candle_count = 30\n",
        "    startup_candle_count = 30\n"
        '    fast_period = IntParameter(3, 12, default=5, space="buy")\n'
        '    exit_margin = DecimalParameter(0.0, 0.01, default=0.0, decimals=3, space="sell")\n',
    )
    .replace("ta.EMA(dataframe, timeperiod=5)", "ta.EMA(dataframe, timeperiod=self.fast_period.value)")
    .replace(
        'down = (dataframe["fast"] < dataframe["slow"])',
        'down = (dataframe["fast"] < dataframe["slow"] * (1 - self.exit_margin.value))',
    )
)


@pytest.fixture(scope="session")
def tunable_strategy() -> Path:
    path = library_dir() / "tunable.py"
    path.write_text(TUNABLE)
    return path
