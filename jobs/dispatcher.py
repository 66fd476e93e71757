"""The bridge from the job command streams to Celery, run inside each Celery worker as a bootstep.

A thread of the worker's main process consumes ``mgmt:backtesting:commands`` in the group
``backtesting_consumers`` (consumer name: the worker's node name, stable across restarts, so a
restarted worker drains its own pending entries first) and hands each command to Celery through
jobs.handlers. It lives and dies with the worker: no worker, no consumer taking commands it could
not run. Entries a dead worker left pending are reclaimed by another worker's dispatcher.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)


def dispatcher_worker(consumer: str) -> Any:
    from jobs.commands import COMMAND_GROUPS, JobKind
    from jobs.handlers import registry
    from streams.worker import StreamWorker

    return StreamWorker(registry=registry, group=COMMAND_GROUPS[JobKind.BACKTEST], consumer=consumer,
                        service_name="worker")  # fmt: skip


class JobDispatcherStep(bootsteps.StartStopStep):
    """Starts the dispatcher thread with the worker; stops it (current batch finished) before the pool."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stream_worker: Any = None
        self.thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        self.stream_worker = dispatcher_worker(f"jobs@{parent.hostname}")
        self.thread = threading.Thread(target=self._run, name="job-dispatcher", daemon=True)
        self.thread.start()
        logger.info("job dispatcher consuming %s as %s", self.stream_worker.streams, self.stream_worker.consumer)

    def _run(self) -> None:
        from django.db import close_old_connections

        try:
            self.stream_worker.run(tick=close_old_connections, tick_seconds=30)
        except Exception:
            logger.exception("the job dispatcher stopped")

    def stop(self, parent: Any) -> None:
        if self.stream_worker is not None:
            self.stream_worker.stop()
        if self.thread is not None:
            self.thread.join(timeout=10)
