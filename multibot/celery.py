"""The Celery application; its settings come from Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multibot.settings")

app = Celery("multibot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_job_dispatcher() -> None:
    # Each worker also consumes the job command streams and turns them into tasks (jobs/dispatcher.py).
    from jobs.dispatcher import JobDispatcherStep

    app.steps["worker"].add(JobDispatcherStep)


_add_job_dispatcher()
