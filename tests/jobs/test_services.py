"""The job services without a worker: claim, heartbeat, progress, the reaper and the stream hand-off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog
from audit.services import Actor
from jobs import services
from jobs.commands import Command, JobStatus, Report, build_job_progress
from jobs.handlers import registry as handlers
from jobs.listeners import registry as listeners
from jobs.models import Job
from multibot.redis_client import redis_client
from streams.bus import publish, stream_key
from streams.catalog import BACKTESTING_COMMANDS, BACKTESTING_RESULTS, HYPEROPT_COMMANDS, LISTENERS, SYSTEM_EVENTS
from streams.worker import StreamWorker

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(user) -> Job:
    return Job.objects.create(owner=user, kind="backtest", parameters={"strategy_name": "Crossing"})


def commands_published() -> list[dict]:
    return [fields for _, fields in redis_client().xrange(stream_key(BACKTESTING_COMMANDS))]


def celery_queue_length() -> int:
    from django.conf import settings

    return redis_client().llen(settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] + "celery")


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def test_a_lost_worker_leaves_its_job_queued_again_for_the_next_attempt(job, django_capture_on_commit_callbacks):
    services.job_claim(job_id=job.pk, host="w1:1")

    with django_capture_on_commit_callbacks(execute=True):
        done = services.jobs_reap(now=later(600))

    job.refresh_from_db()
    assert done["requeued"] == 1
    assert (job.status, job.attempt, job.worker_host) == (JobStatus.QUEUED, 1, "")
    assert "lost" in job.step
    assert [fields["type"] for fields in commands_published()] == [Command.JOB_RUN]
    assert AuditLog.objects.filter(action=AuditLog.Action.JOB_REQUEUE).count() == 1
    # The next claim is the second attempt; the old attempt's reports change nothing any more.
    assert services.job_claim(job_id=job.pk, host="w2:1").attempt == 2
    assert services.job_heartbeat(job_id=job.pk, attempt=1) is True  # stop: no longer yours
    assert services.job_finish(job_id=job.pk, attempt=1, status=JobStatus.COMPLETED) is None


def test_a_job_whose_workers_keep_dying_fails_with_the_reason_at_the_attempt_cap(job, settings):
    settings.JOBS = {**settings.JOBS, "max_attempts": 1}
    services.job_claim(job_id=job.pk, host="w1:1")

    done = services.jobs_reap(now=later(600))

    job.refresh_from_db()
    assert done["failed"] == 1
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert job.error == "worker w1:1 lost (no heartbeat); gave up after 1 attempts"


def test_a_running_job_that_beats_is_not_reaped_and_a_cancelled_one_whose_worker_died_ends_cancelled(job, user):
    services.job_claim(job_id=job.pk, host="w1:1")
    assert services.jobs_reap(now=later(5)) == {"requeued": 0, "failed": 0, "cancelled": 0, "republished": 0}

    services.job_cancel(actor=Actor.system(), job=job)
    assert services.job_heartbeat(job_id=job.pk, attempt=1) is True  # the worker is told to stop
    done = services.jobs_reap(now=later(600))

    job.refresh_from_db()
    assert done["cancelled"] == 1 and job.status == JobStatus.CANCELLED


def test_a_queued_job_no_worker_took_is_published_again(job):
    assert services.jobs_reap(now=later(5))["republished"] == 0

    assert services.jobs_reap(now=later(600))["republished"] == 1
    services.job_dispatched(job_id=job.pk)
    assert services.jobs_reap(now=later(600))["republished"] == 0  # it reached a worker's queue

    assert len(commands_published()) == 1


def test_the_dispatcher_turns_a_command_into_one_celery_task_and_a_redelivery_of_a_taken_job_into_none(job):
    worker = StreamWorker(registry=handlers, group="backtesting_consumers", consumer="t", block_ms=10)
    worker.prepare()
    publish(BACKTESTING_COMMANDS, type=Command.JOB_RUN, payload={"job_id": job.pk, "kind": "backtest"})

    assert worker.step().processed == 1
    assert celery_queue_length() == 1
    job.refresh_from_db()
    assert job.dispatched_at is not None

    services.job_claim(job_id=job.pk, host="w1:1")
    publish(BACKTESTING_COMMANDS, type=Command.JOB_RUN, payload={"job_id": job.pk, "kind": "backtest"})
    assert worker.step().processed == 1
    assert celery_queue_length() == 1  # nothing new to run


def test_hyperopt_commands_have_their_own_consumer_group_and_become_tasks_too(user):
    hyperopt_job = Job.objects.create(owner=user, kind="hyperopt", parameters={"strategy_name": "Tunable"})
    worker = StreamWorker(registry=handlers, group="hyperopt_consumers", consumer="t", block_ms=10)
    worker.prepare()
    publish(HYPEROPT_COMMANDS, type=Command.JOB_RUN, payload={"job_id": hyperopt_job.pk, "kind": "hyperopt"})

    assert worker.step().processed == 1
    assert celery_queue_length() == 1
    assert Job.objects.get(pk=hyperopt_job.pk).dispatched_at is not None


def test_the_listeners_store_progress_of_the_running_attempt_and_announce_it(job):
    services.job_claim(job_id=job.pk, host="w1:1")
    worker = StreamWorker(registry=listeners, group=LISTENERS, consumer="t", block_ms=10,
                          streams=[BACKTESTING_RESULTS])  # fmt: skip
    worker.prepare()
    for attempt, progress in ((1, 0.5), (0, 0.9)):  # the second is from an attempt long gone
        report = build_job_progress(job_id=job.pk, attempt=attempt, progress=progress, step="backtest", at=1.0)
        publish(BACKTESTING_RESULTS, type=Report.JOB_PROGRESS, payload=report)

    assert worker.step().processed == 2

    job.refresh_from_db()
    assert (job.progress, job.step) == (0.5, "backtest")
    announced = [fields for _, fields in redis_client().xrange(stream_key(SYSTEM_EVENTS))
                 if fields["type"] == "job_progress"]  # fmt: skip
    assert len(announced) == 1 and f'"job_id":{job.pk}' in announced[0]["payload"]
