"""Management-side handlers of the job results streams: progress stored and announced as ``job_progress``."""

from __future__ import annotations

from django.conf import settings

from jobs import services
from jobs.commands import RESULT_STREAMS, JobKind, Report, read_job_progress, read_job_result
from jobs.models import Job
from streams.bus import Envelope, announce
from streams.catalog import SYSTEM_EVENTS
from streams.worker import HandlerRegistry

registry = HandlerRegistry()
TIME_LIMIT = settings.STREAMS["listener_time_limit"]


def _announce(job_id: int) -> None:
    fields = ("id", "kind", "status", "progress", "step", "attempt", "owner_id")
    job = Job.objects.filter(pk=job_id).values(*fields).first()
    if job is not None:
        announce(SYSTEM_EVENTS, type="job_progress", payload={"job_id": job.pop("id"), **job})


def handle_job_progress(envelope: Envelope) -> None:
    report = read_job_progress(envelope.payload)
    if services.job_progress_apply(report=report):
        _announce(report["job_id"])


def handle_job_result(envelope: Envelope) -> None:
    # The worker wrote the end itself (with the results); this is the news of it.
    _announce(read_job_result(envelope.payload)["job_id"])


for _kind in (JobKind.BACKTEST, JobKind.HYPEROPT):
    registry.handles(RESULT_STREAMS[_kind], Report.JOB_PROGRESS, time_limit=TIME_LIMIT)(handle_job_progress)
    registry.handles(RESULT_STREAMS[_kind], Report.JOB_RESULT, atomic=False, time_limit=TIME_LIMIT)(handle_job_result)
