"""Job and backtest input and output shapes (types and bounds); the rules live in jobs.services."""

from __future__ import annotations

from rest_framework import serializers

from jobs.commands import JobKind, JobStatus
from jobs.models import Job
from marketdata.vocabulary import TIMEFRAME_SECONDS

_TIMEFRAMES = list(TIMEFRAME_SECONDS)


class JobSerializer(serializers.ModelSerializer):
    task_id = serializers.CharField(read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "task_id", "kind", "owner", "status", "progress", "step", "parameters", "created_at",
            "started_at", "finished_at", "attempt", "worker_host", "cancel_requested", "error",
        ]  # fmt: skip
        read_only_fields = fields


class JobListQuery(serializers.Serializer):
    kind = serializers.ChoiceField(choices=JobKind.choices, required=False)
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
    # The largest integer a JSON client holds exactly; times per_page, an offset still within 64 bits.
    page = serializers.IntegerField(min_value=1, max_value=2**53 - 1, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=500, default=50)


class PageQuery(serializers.Serializer):
    # The largest integer a JSON client holds exactly; times per_page, an offset still within 64 bits.
    page = serializers.IntegerField(min_value=1, max_value=2**53 - 1, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class CompareQuery(serializers.Serializer):
    ids = serializers.RegexField(
        r"^\d{1,18}(,\d{1,18}){0,19}$",
        max_length=400,
        error_messages={"invalid": "ids is a comma-separated list of up to 20 task ids."},
    )


class BacktestInput(serializers.Serializer):
    strategy_name = serializers.CharField(max_length=100)
    timeframe = serializers.ChoiceField(choices=_TIMEFRAMES, default="5m")
    timerange = serializers.CharField(max_length=40)
    # The seed's field: the caller's bot whose pairs and stake the backtest takes when not given.
    bot_id = serializers.IntegerField(required=False, min_value=1, max_value=2**53 - 1)
    pairs = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=100)
    stake_currency = serializers.RegexField(r"^[A-Z0-9]{2,16}$", required=False)
    stake_amount = serializers.FloatField(required=False, min_value=0.00000001, max_value=1e12)
    dry_run_wallet = serializers.FloatField(required=False, min_value=0.00000001, max_value=1e12)
    max_open_trades = serializers.IntegerField(required=False, min_value=-1, max_value=1000)
    timeframe_detail = serializers.ChoiceField(choices=_TIMEFRAMES, required=False)
    enable_protections = serializers.BooleanField(required=False)
    fee = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=0.1)


_SPACES = ["default", "all", "buy", "sell", "enter", "exit", "roi", "stoploss", "trailing", "protection", "trades"]


class HyperoptInput(serializers.Serializer):
    strategy_name = serializers.CharField(max_length=100)
    timeframe = serializers.ChoiceField(choices=_TIMEFRAMES, default="5m")
    timerange = serializers.CharField(max_length=40)
    epochs = serializers.IntegerField(min_value=1, max_value=10_000, default=100)
    spaces = serializers.ListField(child=serializers.ChoiceField(choices=_SPACES), required=False, max_length=12,
                                   allow_empty=False)  # fmt: skip
    loss = serializers.CharField(max_length=64, default="SharpeHyperOptLoss")
    min_trades = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
    jobs = serializers.IntegerField(min_value=1, max_value=64, default=1)
    random_state = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    pairs = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=100)
    stake_currency = serializers.RegexField(r"^[A-Z0-9]{2,16}$", required=False)
    stake_amount = serializers.FloatField(required=False, min_value=0.00000001, max_value=1e12)
    dry_run_wallet = serializers.FloatField(required=False, min_value=0.00000001, max_value=1e12)
    max_open_trades = serializers.IntegerField(required=False, min_value=-1, max_value=1000)
    fee = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=0.1)
