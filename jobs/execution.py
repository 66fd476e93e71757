"""Running one claimed job on this worker: its directory, its freqtrade process, its reports, its end.

Called by the Celery task (jobs.tasks) with a job id. The claim comes first: a job that is not
queued any more (taken, cancelled, finished) is left alone. Progress goes on the kind's results
stream (the listeners store it); the heartbeat, the log tail and the end are written here, by
the attempt that owns the row, so a job never depends on the listeners to finish.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from jobs import backtest, hyperopt, services
from jobs.commands import RESULT_STREAMS, JobKind, JobStatus, Report, build_job_progress, build_job_result
from jobs.models import Job
from jobs.runner import JobProcess, RunOutcome

Probe = Callable[[], tuple[float, str, dict[str, Any] | None]]

logger = logging.getLogger(__name__)


def worker_host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_execute(*, job_id: int) -> str:
    """Claim and run the job; returns what happened (``not_claimed`` or the job's final status)."""
    job = services.job_claim(job_id=job_id, host=worker_host())
    if job is None:
        return "not_claimed"
    runners = {JobKind.BACKTEST: _run_backtest, JobKind.HYPEROPT: _run_hyperopt,
               JobKind.FREQAI_TRAINING: _run_freqai_training}  # fmt: skip
    run = runners.get(JobKind(job.kind))
    # An attempt starts in an empty directory: nothing an earlier run left under the same name (a job id a
    # rebuilt database gave again) is read as this run's results, nor reused by FreqAI as its own models.
    shutil.rmtree(attempt_dir(job), ignore_errors=True)
    try:
        if run is None:
            raise NotImplementedError(f"no worker runs {job.kind} jobs yet")
        status, results, error, tail = run(job)
    except Exception as exc:  # any failure of the job's own ends it failed, with the reason
        logger.exception("job %s failed", job.pk)
        status, results, error, tail = JobStatus.FAILED, None, f"{type(exc).__name__}: {exc}", None
    finished = services.job_finish(job_id=job.pk, attempt=job.attempt, status=status, results=results, error=error,
                                   log_tail=tail, then=_finishers().get(JobKind(job.kind)))  # fmt: skip
    if finished is not None:
        _report(job, Report.JOB_RESULT, build_job_result(job_id=job.pk, attempt=job.attempt, status=status,
                                                         error=error, at=time.time()))  # fmt: skip
    return str(status) if finished is not None else "superseded"


def _finishers() -> dict[JobKind, Callable[[Job], None]]:
    from freqai.services import training_version_finish

    return {JobKind.FREQAI_TRAINING: lambda job: training_version_finish(job=job)}


def _report(job: Job, kind: Report, payload: dict) -> None:
    from streams.bus import announce

    announce(RESULT_STREAMS[job.kind], type=kind, payload=payload)


def attempt_dir(job: Job) -> Path:
    return services.job_dir(job.pk) / f"attempt-{job.attempt}"


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    # The entry point is this project's module; the job's directory is the working directory.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.BASE_DIR), env.get("PYTHONPATH", "")]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def _process(job: Job, argv: list[str], directory: Path, probe: Probe | None = None) -> JobProcess:
    """The job's process; ``probe()`` (progress, step, results so far) is read at each heartbeat."""
    conf = settings.JOBS

    def on_progress(progress: float, step: str) -> None:
        _report(job, Report.JOB_PROGRESS, build_job_progress(job_id=job.pk, attempt=job.attempt, progress=progress,
                                                             step=step, at=time.time()))  # fmt: skip

    beaten = [time.monotonic()]

    def on_beat(tail: list[str]) -> bool:
        found = probe() if probe is not None else None
        try:
            stop = services.job_heartbeat(job_id=job.pk, attempt=job.attempt, log_tail="\n".join(tail),
                                          results=None if found is None else found[2])  # fmt: skip
        except DatabaseError:
            # Fencing: a run that cannot write its heartbeat is reaped after ``stale_seconds`` and run
            # again elsewhere, so it stops itself well before that rather than run twice at once.
            logger.warning("job %s: heartbeat not written", job.pk, exc_info=True)
            close_old_connections()
            stop = time.monotonic() - beaten[0] > conf["stale_seconds"] / 2
        else:
            beaten[0] = time.monotonic()
        if found is not None:
            # Reported after the results so far are stored: a page the report reaches reads them, not the last.
            on_progress(found[0], found[1])
        return stop

    return JobProcess(
        argv, cwd=directory, env=subprocess_env(), log_path=directory / "job.log",
        time_limit=conf["time_limit_seconds"], grace=conf["cancel_grace_seconds"],
        beat_seconds=conf["heartbeat_seconds"], on_progress=on_progress, on_beat=on_beat,
    )  # fmt: skip


def _ended(outcome: RunOutcome) -> tuple[JobStatus, str]:
    if outcome.ended_by == "cancelled":
        return JobStatus.CANCELLED, ""
    if outcome.ended_by == "time_limit":
        return JobStatus.FAILED, f"ended at its time limit of {settings.JOBS['time_limit_seconds']} s"
    last = next((line for line in reversed(outcome.log_tail) if " - ERROR - " in line), "")
    return JobStatus.FAILED, f"freqtrade exited with {outcome.returncode}" + (f": {last}" if last else "")


def _job_candles(parameters: backtest.BacktestParameters) -> Path:
    """The datadir freqtrade reads, holding the files of the candles the job names (its timeframe and its
    detail timeframe, of each pair) as their rows record them: fetched from the manager on a worker
    host that lacks them (marketdata.fetch). A CandleFetchError fails the job before freqtrade starts."""
    from marketdata.fetch import ensure_candles

    timeframes = [parameters["timeframe"], *filter(None, [parameters.get("timeframe_detail")])]
    ensure_candles(pairs=parameters["pairs"], timeframes=timeframes)
    return Path(settings.MARKETDATA["dir"]) / "replay"


def _run_backtest(job: Job) -> tuple[JobStatus, dict | None, str, str]:
    from marketdata.replay_config import replay_exchange_section

    parameters: backtest.BacktestParameters = job.parameters  # type: ignore[assignment]
    directory = attempt_dir(job)
    strategy = services.job_input_ensure(job=job) / parameters["strategy_file"]
    backtest.prepare(directory, parameters, strategy_file=strategy,
                     exchange_section=replay_exchange_section(parameters["pairs"]))  # fmt: skip
    datadir = _job_candles(parameters)
    outcome = _process(job, backtest.command(directory, parameters, datadir=datadir), directory).run()
    tail = "\n".join(outcome.log_tail)
    if not outcome.succeeded:
        status, error = _ended(outcome)
        return status, None, error, tail
    found = backtest.results_json(directory)
    if not found.exists():
        return JobStatus.FAILED, None, "freqtrade wrote no result file", tail
    return JobStatus.COMPLETED, json.loads(found.read_text()), "", tail


def _run_hyperopt(job: Job) -> tuple[JobStatus, dict | None, str, str]:
    from marketdata.replay_config import replay_exchange_section

    parameters: hyperopt.HyperoptParameters = job.parameters  # type: ignore[assignment]
    directory = attempt_dir(job)
    strategy = services.job_input_ensure(job=job) / parameters["strategy_file"]
    backtest.prepare(directory, parameters, strategy_file=strategy,
                     exchange_section=replay_exchange_section(parameters["pairs"]))  # fmt: skip
    total = int(parameters["epochs"])

    def probe() -> tuple[float, str, dict[str, Any] | None]:
        found = hyperopt.summary(directory, total)
        return found["epochs_done"] / total, f"epoch {found['epochs_done']}/{total}", found

    datadir = _job_candles(parameters)
    outcome = _process(job, hyperopt.command(directory, parameters, datadir=datadir), directory, probe).run()
    tail = "\n".join(outcome.log_tail)
    if not outcome.succeeded:
        status, error = _ended(outcome)
        return status, hyperopt.summary(directory, total), error, tail
    found = hyperopt.summary(directory, total)
    if found["best_result"] is None:
        return JobStatus.FAILED, found, "freqtrade wrote no epoch", tail
    return JobStatus.COMPLETED, found, "", tail


def _run_freqai_training(job: Job) -> tuple[JobStatus, dict | None, str, str]:
    """FreqAI's sliding-window training (freqtrade backtesting --freqaimodel); on success its model directory
    is copied whole into the model's version directory (freqai.training.move_into_place)."""
    from freqai import training
    from freqai.services import model_dir
    from marketdata.fetch import ensure_candles
    from marketdata.replay_config import replay_exchange_section

    parameters: dict[str, Any] = job.parameters
    directory = attempt_dir(job)
    strategy = services.job_input_ensure(job=job) / parameters["strategy_file"]
    pairs = list(dict.fromkeys([*parameters["pairs"], *parameters["include_corr_pairlist"]]))
    # The whitelist is what is trained and traded; FreqAI loads the correlated pairs of the market itself.
    section = replay_exchange_section(parameters["pairs"])
    training.prepare(directory, parameters, strategy_file=strategy, exchange_section=section)
    ensure_candles(pairs=pairs, timeframes=list(dict.fromkeys([parameters["timeframe"],
                                                               *parameters["include_timeframes"]])))  # fmt: skip
    datadir = Path(settings.MARKETDATA["dir"]) / "replay"
    outcome = _process(job, training.command(directory, parameters, datadir=datadir), directory).run()
    tail = "\n".join(outcome.log_tail)
    if not outcome.succeeded:
        status, error = _ended(outcome)
        return status, None, error, tail
    found = backtest.results_json(directory)
    models = training.models_dir(directory, parameters)
    if not found.exists() or not training.is_complete(models, parameters["pairs"]):
        return JobStatus.FAILED, None, "freqtrade wrote no result file or an incomplete model directory", tail
    results = json.loads(found.read_text())
    placed = training.artifacts(models, parameters["pairs"])
    metrics = training.metrics(results, results.get("accuracy") or {"accuracy": None, "scored": 0, "method": ""})
    target = model_dir(parameters["model_id"]) / str(parameters["version"])
    relative = str(target.relative_to(settings.HOME))
    manifest = {"model_id": parameters["model_id"], "version": parameters["version"],
                "identifier": parameters["identifier"], "metrics": metrics, **placed}  # fmt: skip
    training.move_into_place(models, target, manifest)
    summary = {"summary": results.get("summary"), "accuracy": results.get("accuracy"), "metrics": metrics,
               "artifacts": {"dir": relative, **placed}, "result_file": results.get("result_file")}  # fmt: skip
    return JobStatus.COMPLETED, summary, "", tail
