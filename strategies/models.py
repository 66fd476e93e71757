"""Strategies and their immutable versions: the code by sha256, optional parameters, what the dry load found."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Strategy(models.Model):
    """A strategy class a user may run; no owner: a built-in every user may run (freqtrade's templates)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="strategies"
    )
    # The class name: freqtrade finds a strategy by it, and bots name it in strategy_name.
    name = models.CharField(max_length=100)
    # The version bots start with: the latest upload, or an older one uploaded again.
    current_version = models.ForeignKey(
        "StrategyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="strategy_name_unique_per_owner"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(owner__isnull=True), name="builtin_strategy_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.owner_id is None


class StrategyVersion(models.Model):
    """One accepted upload: its code is ``strategies/versions/<sha256>.py`` under MULTIBOT_HOME, never rewritten."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="versions")
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveIntegerField()
    # freqtrade's parameter file (``{"strategy_name", "params": {...}}``), written next to a bot's copy.
    parameters = models.JSONField(null=True, blank=True)
    # sha256 of the canonical parameter JSON, "" without: with the code's, what makes a version the same.
    parameters_sha256 = models.CharField(max_length=64, blank=True, default="")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # What the dry load found on the loaded class.
    timeframe = models.CharField(max_length=8, blank=True, default="")
    hyperopt_parameters = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "sha256", "parameters_sha256"], name="strategy_version_unique_content"
            )
        ]

    def __str__(self) -> str:
        return f"{self.strategy.name}@{self.sha256[:12]}"
