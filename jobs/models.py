"""Job: one row per background job of any kind (backtest, hyperopt, FreqAI training, data import)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from jobs.commands import FINISHED_STATUSES, JobKind, JobStatus


class Job(models.Model):
    Kind = JobKind
    Status = JobStatus

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=32, choices=JobKind.choices, db_index=True)
    # What the job was asked to do, as the service checked it (strategy, timeframe, timerange, pairs...).
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Each claim by a worker starts the next attempt; a worker lost mid-job leaves it to the reaper.
    attempt = models.PositiveIntegerField(default=0)
    worker_host = models.CharField(max_length=255, blank=True)
    # The running attempt's worker writes this every few seconds; a stale one means the worker is gone.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the command last reached a worker's queue (None: never, e.g. the web died after commit).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    log_tail = models.TextField(blank=True)
    results = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def task_id(self) -> str:
        """The id the API names the job by (``task_id`` in the API document); the job's own id."""
        return str(self.pk)
