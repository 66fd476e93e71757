"""Celery tasks of the realtime app: thin, each a call to one service."""

from __future__ import annotations

from celery import shared_task

from realtime import services


# Beat sends one every REALTIME["system_metrics_seconds"]; a late one expires rather than pile up.
@shared_task(name="realtime.tasks.system_metrics_broadcast_task", ignore_result=True)
def system_metrics_broadcast_task() -> dict[str, bool]:
    return services.system_metrics_broadcast()
