"""Every write to a job: create, cancel, claim, heartbeat, progress, finish, reap. Audited in the same transaction.

The guarantees (README, "Jobs"): the web writes the job and publishes its command after commit; a
worker runs it only after claiming it (``queued`` -> ``running`` in one conditional UPDATE), so it
never runs twice at once and a redelivered command starts nothing; every write of a running
attempt names its attempt, so a worker that was given up on cannot overwrite its successor; the
reaper re-publishes what no worker took and re-queues (or fails) what a lost worker left running.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit import events
from audit.services import Actor
from jobs.commands import (
    COMMAND_STREAMS,
    FINISHED_STATUSES,
    Command,
    JobKind,
    JobProgress,
    JobStatus,
    build_job_command,
)
from jobs.models import Job
from multibot.errors import ConflictError, InvalidInputError, NotFoundError
from strategies.library import StrategyCode, copy_strategy, strategy_code

if TYPE_CHECKING:
    from collections.abc import Callable

    from multibot.models import User
    from strategies.models import StrategyVersion

logger = logging.getLogger(__name__)


def job_dir(job_id: int) -> Path:
    return Path(settings.JOBS["dir"]) / str(job_id)


def _publish_command(job_id: int, kind: str) -> None:
    from streams.bus import BusError, publish

    try:
        publish(COMMAND_STREAMS[kind], type=Command.JOB_RUN, payload=build_job_command(job_id=job_id, kind=kind),
                request_id=f"job-{job_id}-run-{timezone.now().timestamp():.0f}")  # fmt: skip
    except BusError as exc:
        # The job is committed: the reaper publishes its command again once Redis answers.
        logger.warning("job %s committed but its command was not published (%s); the reaper will", job_id, exc)


def job_create(
    *, actor: Actor, owner: User, kind: JobKind, parameters: dict[str, Any], strategy: StrategyCode | None = None
) -> Job:
    """A queued job; its command is published once the row is committed. ``strategy`` (the version the
    job was asked for, with its parameter file) is copied into the job's own directory, so the job
    runs what it was given, not what is uploaded later."""
    with transaction.atomic():
        job = Job.objects.create(owner=owner, kind=kind, parameters=parameters, step="queued")
        if strategy is not None:
            copy_strategy(strategy, job_dir(job.pk) / "input")
        events.job_created_event(actor=actor, job=job)
        transaction.on_commit(lambda: _publish_command(job.pk, kind))
    return job


class JobInputMissing(Exception):  # noqa: N818 - reads as the condition
    """The job's input (its strategy) is not on this host and cannot be rebuilt here."""


def job_input_ensure(*, job: Job) -> Path:
    """The job's input directory on this host. job_create writes it on the web host; a worker on another
    machine rebuilds it from the database (the version the job was given, its parameter file) and the
    version's code, fetched from the manager and verified by its sha256. JobInputMissing when it cannot."""
    from multibot.manager_client import ManagerFetchError
    from strategies.library import version_code_ensure
    from strategies.models import StrategyVersion

    directory = job_dir(job.pk) / "input"
    if (directory / job.parameters["strategy_file"]).exists():
        return directory
    version_id = job.parameters.get("strategy_version")
    found = StrategyVersion.objects.select_related("strategy").filter(pk=version_id).first() if version_id else None
    if found is None or found.sha256 != job.parameters.get("strategy_sha256"):
        raise JobInputMissing(
            f"The job's strategy file {job.parameters['strategy_file']!r} is not on this host and cannot be rebuilt "
            "here: it is an operator's file of the web host, or its version is gone. Run it on the web host."
        )  # fmt: skip
    try:
        version_code_ensure(found.sha256)
    except ManagerFetchError as exc:
        raise JobInputMissing(str(exc)) from exc
    copy_strategy(StrategyCode.of_version(found), directory)
    return directory


def job_cancel(*, actor: Actor, job: Job) -> Job:
    """A queued job is cancelled at once and never starts; a running one is ended by its worker
    (its process group, within seconds) and ends ``cancelled``. A finished job is a conflict."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            raise ConflictError(f"Job {job.pk} is already {job.status}.")
        was = job.status
        if job.status == JobStatus.QUEUED:
            job.status, job.finished_at, job.step = JobStatus.CANCELLED, timezone.now(), "cancelled before it started"
        job.cancel_requested = True
        job.save(update_fields=["status", "finished_at", "step", "cancel_requested"])
        events.job_cancelled_event(actor=actor, job=job, was=was)
    return job


def job_dispatched(*, job_id: int) -> Job | None:
    """The job, marked dispatched, when it still waits for a worker; None when it is no longer queued."""
    now = timezone.now()
    if not Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, cancel_requested=False).update(dispatched_at=now):
        return None
    return Job.objects.get(pk=job_id)


def job_claim(*, job_id: int, host: str) -> Job | None:
    """queued -> running for the next attempt, in one conditional UPDATE: of two workers given the
    same job, exactly one gets it. None when the job is not (or no longer) queued."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, cancel_requested=False).update(
            status=JobStatus.RUNNING, attempt=F("attempt") + 1, started_at=now, heartbeat_at=now,
            worker_host=host[:255], progress=0.0, step="starting", error="",
        )  # fmt: skip
        if not claimed:
            return None
        job = Job.objects.get(pk=job_id)
        events.job_started_event(actor=Actor.system(), job=job)
    return job


def job_heartbeat(*, job_id: int, attempt: int, log_tail: str = "", results: dict[str, Any] | None = None) -> bool:
    """The running attempt is alive (``results``: what it has found so far); returns True when it must
    stop (cancelled, or no longer its attempt)."""
    mine = Job.objects.filter(pk=job_id, attempt=attempt, status=JobStatus.RUNNING)
    fields: dict[str, Any] = {"heartbeat_at": timezone.now(), "log_tail": log_tail}
    if results is not None:
        fields["results"] = results
    if not mine.update(**fields):
        return True
    return bool(mine.values_list("cancel_requested", flat=True).first())


def job_progress_apply(*, report: JobProgress) -> bool:
    """Store a progress report of the running attempt; a late or stale one changes nothing."""
    return bool(
        Job.objects.filter(
            pk=report["job_id"], attempt=report["attempt"], status=JobStatus.RUNNING, progress__lte=report["progress"]
        ).update(progress=report["progress"], step=report["step"])
    )


def job_finish(
    *,
    job_id: int,
    attempt: int,
    status: JobStatus,
    results: dict[str, Any] | None = None,
    error: str = "",
    log_tail: str | None = None,
    then: Callable[[Job], None] | None = None,
) -> Job | None:
    """End the running attempt; None when it is no longer running (reaped, or finished before)."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error[:10_000],
                              "step": str(status)}  # fmt: skip
    if results is not None:
        fields["results"] = results
    if status == JobStatus.COMPLETED:
        fields["progress"] = 1.0
    if log_tail is not None:
        fields["log_tail"] = log_tail
    with transaction.atomic():
        if not Job.objects.filter(pk=job_id, attempt=attempt, status=JobStatus.RUNNING).update(**fields):
            return None
        job = Job.objects.get(pk=job_id)
        if then is not None:  # what the job's kind records of its end, in the same transaction
            then(job)
        events.job_finished_event(actor=Actor.system(), job=job)
    return job


# -- the reaper ------------------------------------------------------------------------------------
def _requeue_or_fail(job: Job, reason: str) -> str:
    """A running job whose worker is gone: cancelled if that was asked, queued again within the cap, else failed."""
    running = Job.objects.filter(pk=job.pk, attempt=job.attempt, status=JobStatus.RUNNING)
    now = timezone.now()
    if job.cancel_requested:
        running.update(status=JobStatus.CANCELLED, finished_at=now, step="cancelled", error=reason)
        outcome = "cancelled"
    elif job.attempt < settings.JOBS["max_attempts"]:
        if not running.update(status=JobStatus.QUEUED, dispatched_at=None, worker_host="", heartbeat_at=None,
                              step=f"queued again: {reason}"):  # fmt: skip
            return "skipped"
        job.refresh_from_db()
        events.job_requeued_event(actor=Actor.system(), job=job, reason=reason)
        transaction.on_commit(lambda: _publish_command(job.pk, job.kind))
        return "requeued"
    else:
        error = f"{reason}; gave up after {job.attempt} attempts"
        running.update(status=JobStatus.FAILED, finished_at=now, step="failed", error=error)
        outcome = "failed"
    job.refresh_from_db()
    events.job_finished_event(actor=Actor.system(), job=job)
    return outcome


def jobs_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Running jobs whose worker stopped beating are re-queued (attempt cap) or failed; queued jobs
    whose command never reached a worker (a web crash after commit, Redis away) are published again."""
    now = now or timezone.now()
    conf = settings.JOBS
    done = {"requeued": 0, "failed": 0, "cancelled": 0, "republished": 0}
    silent_since = now - timedelta(seconds=conf["stale_seconds"])
    stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=silent_since)
    reaped = []
    for job in stale:
        with transaction.atomic():
            outcome = _requeue_or_fail(job, f"worker {job.worker_host or '?'} lost (no heartbeat)")
        reaped.append(job.pk)
        if outcome in done:
            done[outcome] += 1
    # The visibility timeout: past it an unacknowledged Celery message is redelivered anyway.
    lost_dispatch = now - timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    waiting = (
        Job.objects.filter(status=JobStatus.QUEUED, cancel_requested=False)
        .filter(created_at__lt=now - timedelta(seconds=conf["redispatch_seconds"]))
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=lost_dispatch))
        .exclude(pk__in=reaped)  # just re-queued: their command is on its way
    )
    for job_id, kind in waiting.values_list("id", "kind"):
        _publish_command(job_id, kind)
        done["republished"] += 1
    return done


# -- pruning -----------------------------------------------------------------------------------------
PRUNE_BATCH = 500


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # gone meanwhile
    return total


def _remove_trees(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():  # left as a directory of no job: the next prune takes it
            logger.warning("prune: %s could not be removed entirely", path)


def _leftover_dirs(cutoff: datetime) -> list[Path]:
    """Directories of the jobs directory named for a job that no longer exists, untouched since ``cutoff``
    (a job pruned from another host leaves its attempt files on the worker that ran it). A fresh one may
    belong to a job whose creation is not committed yet: it is never taken."""
    root = Path(settings.JOBS["dir"])
    if not root.is_dir():
        return []
    named = {int(entry.name): entry for entry in root.iterdir() if entry.name.isascii() and entry.name.isdigit()
             and entry.is_dir() and not entry.is_symlink()}  # fmt: skip
    ids = sorted(named)
    existing: set[int] = set()
    for start in range(0, len(ids), PRUNE_BATCH):
        existing.update(Job.objects.filter(pk__in=ids[start : start + PRUNE_BATCH]).values_list("id", flat=True))
    return [path for job_id, path in sorted(named.items())
            if job_id not in existing and path.stat().st_mtime < cutoff.timestamp()]  # fmt: skip


def jobs_prune(
    *, actor: Actor, older_than: timedelta, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Delete the finished jobs (completed, failed, cancelled) that ended before ``now - older_than``:
    their rows, their results with them, and their directories on this host. A queued or running job
    is never touched. Directories left by jobs already gone (older than the bound too) go as well.

    Rows go in batches, each in one transaction with its audit row; the files after it commits. Nothing
    recorded when nothing goes. ``dry_run`` changes nothing and answers what would go.
    """
    if older_than <= timedelta(0):
        raise InvalidInputError("older_than", "The age of the jobs to prune must be more than zero.")
    cutoff = (now or timezone.now()) - older_than
    finished_before = cutoff.isoformat()
    old = Job.objects.filter(status__in=FINISHED_STATUSES).filter(
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)
    )
    job_ids = list(old.order_by("id").values_list("id", flat=True))
    leftovers = _leftover_dirs(cutoff)
    answer: dict[str, Any] = {"finished_before": finished_before, "dry_run": dry_run, "job_ids": [],
                              "directories": 0, "freed_bytes": 0}  # fmt: skip
    if dry_run:
        dirs = [path for path in map(job_dir, job_ids) if path.is_dir()] + leftovers
        answer.update(job_ids=job_ids, directories=len(dirs), freed_bytes=sum(map(_tree_bytes, dirs)))
        return answer
    for start in range(0, len(job_ids), PRUNE_BATCH):
        with transaction.atomic():
            batch = Job.objects.select_for_update().filter(pk__in=job_ids[start:start + PRUNE_BATCH],
                                                           status__in=FINISHED_STATUSES)  # fmt: skip
            deleted = list(batch.order_by("id").values_list("id", flat=True))
            Job.objects.filter(pk__in=deleted).delete()
            dirs = [path for path in map(job_dir, deleted) if path.is_dir()]
            freed = sum(map(_tree_bytes, dirs))
            events.jobs_pruned_event(actor=actor, job_ids=deleted, finished_before=finished_before,
                                     directories=len(dirs), freed_bytes=freed)  # fmt: skip
            transaction.on_commit(lambda dirs=dirs: _remove_trees(dirs))
        answer["job_ids"] += deleted
        answer["directories"] += len(dirs)
        answer["freed_bytes"] += freed
    if leftovers:
        freed = sum(map(_tree_bytes, leftovers))
        with transaction.atomic():
            events.jobs_pruned_event(actor=actor, job_ids=[], finished_before=finished_before,
                                     directories=len(leftovers), freed_bytes=freed)  # fmt: skip
            transaction.on_commit(lambda: _remove_trees(leftovers))
        answer["directories"] += len(leftovers)
        answer["freed_bytes"] += freed
    return answer


# -- backtests ---------------------------------------------------------------------------------------
_TIMERANGE = re.compile(r"^(?P<start>\d{8})?-(?P<end>\d{8})?$")
DEFAULT_STAKE_AMOUNT = 100.0
DEFAULT_WALLET = 1000.0


def parse_timerange(text: str) -> tuple[datetime | None, datetime | None]:
    """freqtrade's ``YYYYMMDD-YYYYMMDD`` (either side may be left open), as UTC datetimes."""
    match = _TIMERANGE.match(text or "")
    if match is None or not (match["start"] or match["end"]):
        raise InvalidInputError("timerange", "A timerange is YYYYMMDD-YYYYMMDD (one side may be left open).")
    try:
        start, end = (None if not match[side] else datetime.strptime(match[side], "%Y%m%d").replace(tzinfo=UTC)
                      for side in ("start", "end"))  # fmt: skip
    except ValueError:
        raise InvalidInputError("timerange", f"{text!r} names a day that does not exist.") from None
    if start and end and start >= end:
        raise InvalidInputError("timerange", "The timerange ends before it starts.")
    return start, end


def _check_candles(pairs: list[str], timeframe: str, start: datetime | None, end: datetime | None, field: str) -> None:
    from marketdata.selectors import candle_set_get

    for pair in pairs:
        stored = candle_set_get(pair=pair, timeframe=timeframe)
        if stored is None:
            raise InvalidInputError(field, f"No {timeframe} candles are stored for {pair}.")
        if (start and stored.end < start) or (end and stored.start >= end):
            raise InvalidInputError(
                "timerange", f"The {timeframe} candles of {pair} cover {stored.start:%Y-%m-%d} to "
                f"{stored.end:%Y-%m-%d}, outside the timerange.",
            )  # fmt: skip


def backtest_create(
    *,
    actor: Actor,
    owner: User,
    strategy_name: str,
    timeframe: str,
    timerange: str,
    pairs: list[str] | None = None,
    stake_currency: str = "USDT",
    stake_amount: float | str = DEFAULT_STAKE_AMOUNT,
    dry_run_wallet: float = DEFAULT_WALLET,
    max_open_trades: int = 3,
    timeframe_detail: str = "",
    enable_protections: bool = False,
    fee: float | None = None,
) -> Job:
    """A queued backtest of the strategy on the stored candles; everything that would stop it from
    running is refused here (InvalidInputError), before anything is queued."""
    parameters, code = _run_parameters(
        owner=owner, strategy_name=strategy_name, timeframe=timeframe, timerange=timerange, pairs=pairs,
        stake_currency=stake_currency, stake_amount=stake_amount, dry_run_wallet=dry_run_wallet,
        max_open_trades=max_open_trades, timeframe_detail=timeframe_detail, enable_protections=enable_protections,
        fee=fee,
    )  # fmt: skip
    return job_create(actor=actor, owner=owner, kind=JobKind.BACKTEST, parameters=parameters, strategy=code)


def _run_parameters(
    *,
    owner: User,
    strategy_name: str,
    timeframe: str,
    timerange: str,
    pairs: list[str] | None,
    stake_currency: str,
    stake_amount: float | str,
    dry_run_wallet: float,
    max_open_trades: int,
    timeframe_detail: str,
    enable_protections: bool,
    fee: float | None,
) -> tuple[dict[str, Any], StrategyCode]:
    """What a backtest (or each epoch of a hyperopt) runs on, checked; and the strategy version it runs."""
    from marketdata.selectors import replay_market_pairs
    from marketdata.vocabulary import TIMEFRAME_SECONDS

    code = strategy_code(strategy_name, owner=owner)
    if code is None:
        raise InvalidInputError("strategy_name", f"Strategy {strategy_name!r} is not in the strategy library.")
    start, end = parse_timerange(timerange)
    pairs = list(pairs) if pairs else replay_market_pairs(quote=stake_currency)
    if not pairs:
        raise InvalidInputError("pairs", f"No pairs given and no {stake_currency} market is stored.")
    _check_candles(pairs, timeframe, start, end, "timeframe")
    if timeframe_detail:
        if TIMEFRAME_SECONDS.get(timeframe_detail, 0) >= TIMEFRAME_SECONDS.get(timeframe, 0):
            raise InvalidInputError("timeframe_detail", "The detail timeframe must be shorter than the timeframe.")
        _check_candles(pairs, timeframe_detail, start, end, "timeframe_detail")
    parameters = {
        "strategy_name": strategy_name, "strategy_file": f"{strategy_name}.py" if code.sha256 else code.source.name,
        # The version (with its parameter file): a worker on another host rebuilds the job's input from it.
        "strategy_sha256": code.sha256, "strategy_version": code.version_id, "timeframe": timeframe,
        "timerange": timerange, "pairs": pairs, "stake_currency": stake_currency, "stake_amount": stake_amount,
        "dry_run_wallet": dry_run_wallet, "max_open_trades": max_open_trades, "timeframe_detail": timeframe_detail,
        "enable_protections": enable_protections, "fee": fee,
    }  # fmt: skip
    return parameters, code


def hyperopt_create(
    *,
    actor: Actor,
    owner: User,
    strategy_name: str,
    timeframe: str,
    timerange: str,
    epochs: int = 100,
    spaces: list[str] | None = None,
    loss: str = "SharpeHyperOptLoss",
    min_trades: int = 1,
    jobs: int = 1,
    random_state: int | None = None,
    pairs: list[str] | None = None,
    stake_currency: str = "USDT",
    stake_amount: float | str = DEFAULT_STAKE_AMOUNT,
    dry_run_wallet: float = DEFAULT_WALLET,
    max_open_trades: int = 3,
    fee: float | None = None,
) -> Job:
    """A queued hyperopt of the strategy: freqtrade's ``hyperopt`` with one of its own loss functions."""
    from freqtrade.constants import HYPEROPT_LOSS_BUILTIN

    if loss not in HYPEROPT_LOSS_BUILTIN:
        raise InvalidInputError("loss", f"{loss!r} is not one of freqtrade's loss functions.")
    parameters, code = _run_parameters(
        owner=owner, strategy_name=strategy_name, timeframe=timeframe, timerange=timerange, pairs=pairs,
        stake_currency=stake_currency, stake_amount=stake_amount, dry_run_wallet=dry_run_wallet,
        max_open_trades=max_open_trades, timeframe_detail="", enable_protections=False, fee=fee,
    )  # fmt: skip
    parameters.update(epochs=epochs, spaces=list(spaces or ["default"]), loss=loss, min_trades=min_trades, jobs=jobs,
                      random_state=random_state)  # fmt: skip
    return job_create(actor=actor, owner=owner, kind=JobKind.HYPEROPT, parameters=parameters, strategy=code)


# -- hyperopt results applied --------------------------------------------------------------------------
def hyperopt_parameter_document(*, job: Job) -> dict[str, Any]:
    """The completed hyperopt's best parameters in freqtrade's own parameter-file format, written by
    freqtrade's own exporter; stamped with the job's end rather than now, so applying twice is one version."""
    from jobs.hyperopt import write_parameter_file

    best = (job.results or {}).get("best_result") or {}
    if not best.get("params"):
        raise ConflictError(f"Hyperopt job {job.pk} found no parameters to apply.")
    name = job.parameters["strategy_name"]
    with tempfile.TemporaryDirectory() as scratch:
        path = write_parameter_file(best, strategy_name=name, path=Path(scratch) / f"{name}.json")
        document = json.loads(path.read_text(encoding="utf-8"))
    if job.finished_at is not None:
        document["export_time"] = job.finished_at.astimezone(UTC).isoformat()
    return document


def hyperopt_apply(*, actor: Actor, job: Job) -> tuple[StrategyVersion, bool]:
    """Store the best parameters of a completed hyperopt as a version of the strategy it ran: the code
    it ran with those parameters; (version, created). The version becomes the one bots start with.

    A built-in strategy is everyone's and is never rewritten: applying to one is a conflict (upload
    the code under your own class name, hyperopt that). So is a job not completed, or one whose
    strategy is no longer stored."""
    from strategies.selectors import strategy_get
    from strategies.services import strategy_parameters_apply

    if job.kind != JobKind.HYPEROPT:
        raise ConflictError(f"Job {job.pk} is a {job.kind}, not a hyperopt.")
    if job.status != JobStatus.COMPLETED:
        raise ConflictError(f"Hyperopt job {job.pk} is {job.status}; only a completed hyperopt can be applied.")
    name = job.parameters["strategy_name"]
    try:
        strategy = strategy_get(user=job.owner, name=name)
    except NotFoundError:
        raise ConflictError(f"Strategy {name!r} of job {job.pk} is no longer in the strategy library.") from None
    if strategy.is_builtin:
        raise ConflictError(f"{name!r} is a built-in strategy and is not changed; upload it under a class name "
                            "of your own, hyperopt that, and apply.")  # fmt: skip
    document = hyperopt_parameter_document(job=job)
    version, created = strategy_parameters_apply(
        actor=actor, strategy=strategy, parameters=document, code_sha256=job.parameters.get("strategy_sha256") or ""
    )
    # The version's own upload row was written with it; this one ties it to the job. Not one transaction:
    # the dry load in between takes seconds and must hold none open.
    with transaction.atomic():
        events.hyperopt_applied_event(actor=actor, job=job, version=version, new_version=created)
    return version, created
