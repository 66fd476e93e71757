"""Celery tasks of the jobs: thin, each a call to one service; the retry policy is the job row's own."""

from __future__ import annotations

from celery import shared_task

from jobs import execution, services


def task_id_for(job_id: int) -> str:
    """One task id per job: a command delivered twice enqueues the same task, which the claim makes a no-op."""
    return f"job-{int(job_id)}"


# acks_late and reject_on_worker_lost: a task whose process dies goes back to the queue; the claim
# then finds the job running (or re-queued by the reaper) and the attempt cap decides, not Celery.
@shared_task(name="jobs.tasks.job_execute_task", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def job_execute_task(job_id: int) -> str:
    return execution.job_execute(job_id=job_id)


@shared_task(name="jobs.tasks.jobs_reap_task", ignore_result=True)
def jobs_reap_task() -> dict[str, int]:
    return services.jobs_reap()
