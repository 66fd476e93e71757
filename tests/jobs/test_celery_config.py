"""Celery as the jobs need it: long tasks acknowledged late, one at a time, limits under the visibility timeout."""

from __future__ import annotations

import subprocess
import sys

import jobs.tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does
from multibot.celery import app
from tests.support.processes import ROOT, server_env


def test_tasks_are_acknowledged_late_one_at_a_time_and_given_back_when_their_process_dies():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert app.tasks["jobs.tasks.job_execute_task"].acks_late is True


def test_time_limits_sit_above_the_jobs_own_and_below_the_brokers_visibility_timeout():
    from django.conf import settings

    conf = app.conf
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert settings.JOBS["time_limit_seconds"] < conf.task_soft_time_limit < conf.task_time_limit < visibility


def test_concurrency_comes_from_the_environment_and_defaults_to_the_cores():
    def concurrency(**env: str) -> str:
        program = "from multibot.celery import app; print(app.conf.worker_concurrency)"
        return subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=server_env(**env), capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip

    import os

    assert concurrency(MULTIBOT_WORKER_CONCURRENCY="3") == "3"
    assert concurrency() == str(os.cpu_count())


def test_the_beat_reaps_jobs_periodically():
    entry = app.conf.beat_schedule["jobs-reap"]
    assert entry["task"] == "jobs.tasks.jobs_reap_task" and entry["task"] in app.tasks
