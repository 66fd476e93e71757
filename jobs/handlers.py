"""The workers' stream handlers: each job command becomes one Celery task (see README, "Jobs").

Not atomic: the effect is a message on Celery's queue. The task is enqueued first and the job marked
dispatched after, so a failure in between is retried (the handler raises) rather than lost; a command
delivered twice enqueues the same task id twice and the claim lets only one run.
"""

from __future__ import annotations

from jobs import services
from jobs.commands import COMMAND_STREAMS, Command, JobKind, read_job_command
from streams.bus import Envelope
from streams.worker import HandlerRegistry

registry = HandlerRegistry()
# The kinds a worker runs today.
RUNNABLE_KINDS = (JobKind.BACKTEST, JobKind.HYPEROPT, JobKind.FREQAI_TRAINING)


def handle_job_run(envelope: Envelope) -> None:
    from jobs.models import Job
    from jobs.tasks import job_execute_task, task_id_for

    command = read_job_command(envelope.payload)
    if not Job.objects.filter(pk=command["job_id"], status=Job.Status.QUEUED, cancel_requested=False).exists():
        return  # taken, cancelled or finished: nothing to start
    job_execute_task.apply_async(args=[command["job_id"]], task_id=task_id_for(command["job_id"]))
    services.job_dispatched(job_id=command["job_id"])


for _kind in RUNNABLE_KINDS:
    registry.handles(COMMAND_STREAMS[_kind], Command.JOB_RUN, atomic=False)(handle_job_run)
