"""The bridge from the job command streams to Celery, run inside each Celery worker as a bootstep.

Threads of the worker's main process, one per job command stream (``mgmt:backtesting:commands``
in the group ``backtesting_consumers``, ``mgmt:hyperopt:commands`` in ``hyperopt_consumers``),
each named after the worker's node (stable across restarts, so a restarted worker drains its own
pending entries first), hand each command to Celery through jobs.handlers. They live and die with
the worker: no worker, no consumer taking commands it could not run. Entries a dead worker left
pending are reclaimed by another worker's dispatcher.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)


def dispatcher_workers(node: str) -> list[Any]:
    """One stream consumer per runnable kind's command stream (its own group), named after the node."""
    from jobs.commands import COMMAND_GROUPS
    from jobs.handlers import RUNNABLE_KINDS, registry
    from streams.worker import StreamWorker

    return [StreamWorker(registry=registry, group=COMMAND_GROUPS[kind], consumer=f"jobs@{node}", service_name="worker")
            for kind in RUNNABLE_KINDS]  # fmt: skip


class JobDispatcherStep(bootsteps.StartStopStep):
    """Starts the dispatcher threads with the worker; stops them (current batch finished) before the pool."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stream_workers: list[Any] = []
        self.threads: list[threading.Thread] = []

    def start(self, parent: Any) -> None:
        self.stream_workers = dispatcher_workers(parent.hostname)
        for stream_worker in self.stream_workers:
            name = f"job-dispatcher-{stream_worker.group}"
            thread = threading.Thread(target=self._run, args=(stream_worker,), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)
            logger.info("job dispatcher consuming %s as %s", stream_worker.streams, stream_worker.consumer)

    @staticmethod
    def _run(stream_worker: Any) -> None:
        from django.db import close_old_connections

        try:
            stream_worker.run(tick=close_old_connections, tick_seconds=30)
        except Exception:
            logger.exception("the job dispatcher of %s stopped", stream_worker.group)

    def stop(self, parent: Any) -> None:
        for stream_worker in self.stream_workers:
            stream_worker.stop()
        for thread in self.threads:
            thread.join(timeout=10)
