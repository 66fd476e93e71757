"""FreqAI models (what to train: model class, strategy, feature and training parameters) and their versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class FreqaiModel(models.Model):
    """A model definition its owner trains as jobs; each training is a FreqaiModelVersion."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="freqai_models")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # The seed's bot: the owner's bot the model is meant for (its pairs are the default pairs).
    bot = models.ForeignKey("bots.Bot", null=True, blank=True, on_delete=models.SET_NULL, related_name="freqai_models")
    model_type = models.CharField(max_length=64)  # one of freqtrade's FreqAI model classes
    strategy_name = models.CharField(max_length=100)
    timeframe = models.CharField(max_length=8, default="5m")
    pairs = models.JSONField(default=list)
    # freqtrade's freqai.feature_parameters, by their own names.
    include_timeframes = models.JSONField(default=list)
    include_corr_pairlist = models.JSONField(default=list)
    label_period_candles = models.PositiveIntegerField(default=24)
    indicator_periods_candles = models.JSONField(default=list)
    # freqtrade's freqai sliding windows.
    train_period_days = models.PositiveIntegerField(default=7)
    backtest_period_days = models.FloatField(default=1.0)
    # A bot running the model retrains each pair once its newest model is this old (freqai.live_retrain_hours).
    live_retrain_hours = models.FloatField(default=1.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="freqai_model_name_per_owner")]

    def __str__(self) -> str:
        return f"FreqAI model {self.name} ({self.model_type})"


class FreqaiModelVersion(models.Model):
    """One training of a model: the job that runs it, and once complete its artifacts and metrics.

    Ready only when ``ready_at`` is set: the run completed and its artifacts were renamed into place.
    Before that its state is its job's (a job the reaper failed leaves a version that is simply failed).
    """

    model = models.ForeignKey(FreqaiModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    job = models.OneToOneField("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="freqai_version")
    # The artifacts' directory, relative to MULTIBOT_HOME (freqai/<model id>/<version>).
    artifacts_dir = models.CharField(max_length=300, blank=True)
    files = models.JSONField(default=list)  # [{path, size}] relative to the artifacts' directory
    pairs = models.JSONField(default=list)
    windows = models.JSONField(default=list)  # [{pair, trained_until}] one per sliding window, from freqtrade's files
    metrics = models.JSONField(null=True, blank=True)
    training_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="freqai_version_per_model")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def status(self) -> str:
        """``ready``; else ``training`` while its job is queued or running; else its job's end (``failed``,
        ``cancelled``; a completed job without the artifacts in place is ``failed``)."""
        if self.ready_at is not None:
            return "ready"
        job = self.job
        if job is None:
            return "failed"
        if job.status in ("queued", "running"):
            return "training"
        return "cancelled" if job.status == "cancelled" else "failed"
