"""The beat task that sends system_metrics and stream_health, as the worker registers and runs it."""

from __future__ import annotations

import realtime.tasks  # registers the task, as the worker's autodiscovery does
from multibot.celery import app


def test_the_beat_sends_system_metrics_every_configured_period_and_drops_a_late_one():
    entry = app.conf.beat_schedule["system-metrics"]

    assert entry["task"] == "realtime.tasks.system_metrics_broadcast_task" and entry["task"] in app.tasks
    assert entry["schedule"] == 10.0
    assert entry["options"]["expires"] == 10.0


def test_the_task_broadcasts_both_events():
    assert realtime.tasks.system_metrics_broadcast_task.apply().get() == {
        "system_metrics": True,
        "stream_health": True,
    }
