"""The job protocol, written once: job kinds, statuses, and the payloads of commands and reports.

- ``JobKind``: every kind of job, each with the stream its commands go on and the stream its
  progress and results come back on;
- ``JobStatus``: where a job is in its life; ``FINISHED_STATUSES`` end it;
- ``Command`` and ``Report``: the envelope types on those streams;
- one TypedDict per payload with one ``build_*`` (the producer's) and one ``read_*`` (the consumer's).

No models and no I/O: the services, the stream handlers, the tasks and the listeners all import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypedDict

from django.db.models import TextChoices

from streams.catalog import (
    BACKTESTING_COMMANDS,
    BACKTESTING_RESULTS,
    DATA_COMMANDS,
    DATA_STATUS,
    FREQAI_COMMANDS,
    FREQAI_STATUS,
    HYPEROPT_COMMANDS,
    HYPEROPT_RESULTS,
)


class JobKind(TextChoices):
    BACKTEST = "backtest"
    HYPEROPT = "hyperopt"
    FREQAI_TRAINING = "freqai_training"
    DATA_IMPORT = "data_import"


# Where each kind's commands go and where its reports come back.
COMMAND_STREAMS: dict[str, str] = {
    JobKind.BACKTEST: BACKTESTING_COMMANDS,
    JobKind.HYPEROPT: HYPEROPT_COMMANDS,
    JobKind.FREQAI_TRAINING: FREQAI_COMMANDS,
    JobKind.DATA_IMPORT: DATA_COMMANDS,
}
RESULT_STREAMS: dict[str, str] = {
    JobKind.BACKTEST: BACKTESTING_RESULTS,
    JobKind.HYPEROPT: HYPEROPT_RESULTS,
    JobKind.FREQAI_TRAINING: FREQAI_STATUS,
    JobKind.DATA_IMPORT: DATA_STATUS,
}
# The consumer group of the workers on each kind's command stream.
COMMAND_GROUPS: dict[str, str] = {
    JobKind.BACKTEST: "backtesting_consumers",
    JobKind.HYPEROPT: "hyperopt_consumers",
    JobKind.FREQAI_TRAINING: "freqai_consumers",
    JobKind.DATA_IMPORT: "data_consumers",
}


class JobStatus(TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class Command(StrEnum):
    """What the web asks of the workers."""

    JOB_RUN = "job_run"


class Report(StrEnum):
    """What a worker reports while and after it runs a job."""

    JOB_PROGRESS = "job_progress"
    JOB_RESULT = "job_result"


# -- commands -------------------------------------------------------------------------------------
class JobCommand(TypedDict):
    """Run the job: whoever claims it first (queued -> running) runs it; a redelivery finds it taken."""

    job_id: int
    kind: JobKind


def build_job_command(*, job_id: int, kind: str) -> JobCommand:
    return JobCommand(job_id=int(job_id), kind=JobKind(kind))


def read_job_command(payload: Mapping[str, Any]) -> JobCommand:
    return build_job_command(job_id=payload["job_id"], kind=payload["kind"])


# -- reports --------------------------------------------------------------------------------------
class JobProgress(TypedDict):
    """How far attempt ``attempt`` of a job has got: ``progress`` 0-1, ``step`` in words."""

    job_id: int
    attempt: int
    progress: float
    step: str
    at: float


def build_job_progress(*, job_id: int, attempt: int, progress: float, step: str, at: float) -> JobProgress:
    return JobProgress(job_id=int(job_id), attempt=int(attempt), progress=min(max(float(progress), 0.0), 1.0),
                       step=str(step)[:200], at=float(at))  # fmt: skip


def read_job_progress(payload: Mapping[str, Any]) -> JobProgress:
    return build_job_progress(job_id=payload["job_id"], attempt=payload["attempt"], progress=payload["progress"],
                              step=payload.get("step") or "", at=payload["at"])  # fmt: skip


class JobResult(TypedDict):
    """How attempt ``attempt`` of a job ended; ``results`` for a completed one, ``error`` for a failed one."""

    job_id: int
    attempt: int
    status: JobStatus
    error: str
    at: float


def build_job_result(*, job_id: int, attempt: int, status: str, error: str = "", at: float) -> JobResult:
    status = JobStatus(status)
    if status not in FINISHED_STATUSES:
        raise ValueError(f"a job result ends the job; {status} does not")
    return JobResult(job_id=int(job_id), attempt=int(attempt), status=status, error=str(error), at=float(at))


def read_job_result(payload: Mapping[str, Any]) -> JobResult:
    return build_job_result(job_id=payload["job_id"], attempt=payload["attempt"], status=payload["status"],
                            error=payload.get("error") or "", at=payload["at"])  # fmt: skip
