"""FreqAI model input and output shapes (types and bounds); the rules live in freqai.services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from freqai.models import FreqaiModel, FreqaiModelVersion
from freqai.selectors import latest_ready_version, latest_version, model_status
from freqai.services import MAX_RETRAIN_HOURS
from marketdata.vocabulary import TIMEFRAME_SECONDS

_TIMEFRAMES = list(TIMEFRAME_SECONDS)
_PAIR = serializers.CharField(max_length=40)


class ModelInput(serializers.Serializer):
    name = serializers.RegexField(r"^[\w .-]{1,100}$", max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    bot_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**53 - 1)
    model_type = serializers.CharField(max_length=64, required=False)
    strategy_name = serializers.CharField(max_length=100, required=False)
    timeframe = serializers.ChoiceField(choices=_TIMEFRAMES, required=False)
    pairs = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=50)
    include_timeframes = serializers.ListField(child=serializers.ChoiceField(choices=_TIMEFRAMES), required=False,
                                               allow_empty=False, max_length=6)  # fmt: skip
    include_corr_pairlist = serializers.ListField(child=serializers.CharField(max_length=40), required=False,
                                                  max_length=20)  # fmt: skip
    label_period_candles = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    indicator_periods_candles = serializers.ListField(child=serializers.IntegerField(min_value=2, max_value=1000),
                                                      required=False, allow_empty=False, max_length=10)  # fmt: skip
    train_period_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    backtest_period_days = serializers.FloatField(required=False, min_value=0.01, max_value=3650)
    live_retrain_hours = serializers.FloatField(required=False, min_value=0, max_value=MAX_RETRAIN_HOURS, help_text=(
        "A bot running the model retrains each pair once its newest model is this many hours old."))  # fmt: skip


class ModelUpdateInput(ModelInput):
    name = serializers.RegexField(r"^[\w .-]{1,100}$", max_length=100, required=False)


class TrainInput(serializers.Serializer):
    timerange = serializers.CharField(max_length=40, required=False)


class VersionSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    task_id = serializers.SerializerMethodField()

    class Meta:
        model = FreqaiModelVersion
        fields = ["version", "status", "task_id", "artifacts_dir", "metrics", "training_seconds", "created_at",
                  "ready_at"]  # fmt: skip
        read_only_fields = fields

    def get_task_id(self, version: FreqaiModelVersion) -> str | None:
        return None if version.job_id is None else str(version.job_id)


class ModelSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    backtest_results = serializers.SerializerMethodField()
    bot_id = serializers.IntegerField(read_only=True, allow_null=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    version = serializers.SerializerMethodField()

    class Meta:
        model = FreqaiModel
        fields = [
            "id", "name", "description", "status", "created_at", "backtest_results", "owner", "bot_id",
            "model_type", "strategy_name", "timeframe", "pairs", "include_timeframes", "include_corr_pairlist",
            "label_period_candles", "indicator_periods_candles", "train_period_days", "backtest_period_days",
            "live_retrain_hours", "version",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status(self, model: FreqaiModel) -> str:
        return model_status(model)

    def get_backtest_results(self, model: FreqaiModel) -> dict[str, Any] | None:
        """The seed's figures of the newest ready version (None before one is)."""
        ready = latest_ready_version(model)
        if ready is None or not ready.metrics:
            return None
        return {key: ready.metrics.get(key) for key in ("accuracy", "profit_factor", "total_trades")}

    def get_version(self, model: FreqaiModel) -> int | None:
        ready = latest_ready_version(model)
        return None if ready is None else ready.version


def status_document(model: FreqaiModel) -> dict[str, Any]:
    """GET /freqai/models/{id}/status: the newest training (its job's progress while it runs), the newest
    ready version's artifacts and metrics."""
    latest, ready = latest_version(model), latest_ready_version(model)
    job = latest.job if latest is not None else None
    shown = ready or latest
    return {
        "model_id": model.pk, "status": model_status(model),
        "training": None if latest is None else {
            "version": latest.version, "status": latest.status, "task_id": None if job is None else str(job.pk),
            "progress": None if job is None else job.progress, "step": "" if job is None else job.step,
            "error": "" if job is None else job.error,
        },
        "version": None if ready is None else ready.version,
        "trained_pairs": [] if shown is None else shown.pairs,
        "windows": [] if shown is None else shown.windows,
        "artifacts_dir": None if ready is None else ready.artifacts_dir,
        "artifacts": [] if ready is None else ready.files,
        "artifacts_bytes": 0 if ready is None else sum(item["size"] for item in ready.files),
        "metrics": None if ready is None else ready.metrics,
        "training_seconds": None if ready is None else ready.training_seconds,
        "versions": VersionSerializer(model.versions.all(), many=True).data,
    }  # fmt: skip
