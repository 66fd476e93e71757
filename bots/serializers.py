"""Bot input and output shapes (types and lengths); the rules live in bots.services and bots.validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bots.ftconfig import UNLIMITED_STAKE
from bots.models import Bot
from bots.validation import MAX_STAKE

STATUS_HELP = (
    "What the gateway last said of the bot's process: stopped, starting, running, stopping, error, or unresponsive "
    "(its process exists but its own API has stopped answering the gateway's probes; it is restarted if that lasts)."
)

# A 32-bit column: what every database's IntegerField holds.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


# The schema tells the bounds the service holds a stake to (bots.validation); OpenAPI 3.0 spells an
# open bound as a boolean beside its minimum.
_STAKE_SCHEMA = {
    "oneOf": [
        {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": int(MAX_STAKE)},
        {"type": "string", "enum": [UNLIMITED_STAKE]},
    ]
}


@extend_schema_field(_STAKE_SCHEMA)
class StakeAmountField(serializers.DecimalField):
    """A number of the stake currency, or freqtrade's "unlimited" (None inside, null in the database)."""

    def __init__(self, **kwargs: Any) -> None:
        # The column's own shape: 24 digits, 8 of them after the point.
        super().__init__(max_digits=24, decimal_places=8, coerce_to_string=False, **kwargs)

    def get_attribute(self, instance: Any) -> Any:
        value = super().get_attribute(instance)
        return UNLIMITED_STAKE if value is None else value

    def to_internal_value(self, data: Any) -> Decimal | None:
        if data == UNLIMITED_STAKE:
            return None
        return super().to_internal_value(data)

    def to_representation(self, value: Any) -> Any:
        return UNLIMITED_STAKE if value == UNLIMITED_STAKE else super().to_representation(value)


class TextField(serializers.CharField):
    """Text, and only text: DRF's CharField would also take a number (``"exchange_secret": 12``) and store
    its digits; a client that sends a number where the schema says string has a bug worth hearing of."""

    default_error_messages = {"not_text": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


class BotSerializer(serializers.ModelSerializer):
    # The model's text columns (name, strategy_name, exchange, ...) are read as text only, too.
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: TextField,
        models.TextField: TextField,
    }
    stake_amount = StakeAmountField()
    total_profit = serializers.DecimalField(max_digits=24, decimal_places=8, coerce_to_string=False, read_only=True)
    max_open_trades = serializers.IntegerField(required=False, min_value=_INT_MIN, max_value=_INT_MAX)
    pair_whitelist = serializers.ListField(child=TextField(max_length=40), required=False)
    exchange_key = TextField(write_only=True, required=False, allow_blank=True, max_length=512)
    exchange_secret = TextField(write_only=True, required=False, allow_blank=True, max_length=512)
    has_exchange_keys = serializers.BooleanField(read_only=True)
    host = TextField(required=False, allow_blank=True, max_length=255, help_text=(
        "The host the bot runs on: placed by its first start (the live host with the most free slots) and kept "
        "until it is moved. Superusers may set it to pin the bot to a registered host; \"\" unpins it."))  # fmt: skip
    freqai_model_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**53 - 1,
                                               help_text=(
        "Your FreqAI model the bot runs (its strategy, timeframe and trained pairs), pinned to its newest ready "
        "version; null: none. Changed only while the bot is stopped."))  # fmt: skip
    freqai_version = serializers.IntegerField(read_only=True, allow_null=True, help_text=(
        "The version of the model the bot runs (POST /bots/{bot}/reload-model takes the newest ready one)."
    ))  # fmt: skip

    class Meta:
        model = Bot
        fields = [
            "id", "name", "strategy_name", "exchange", "stake_currency", "stake_amount",
            "timeframe", "pair_whitelist", "max_open_trades", "dry_run",
            "status", "pid", "total_trades", "profitable_trades", "total_profit",
            "exchange_key", "exchange_secret", "has_exchange_keys", "host", "gateway_seen_at", "api_answered_at",
            "freqai_model_id", "freqai_version", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "status", "pid", "total_trades", "profitable_trades", "gateway_seen_at",
                            "api_answered_at", "created_at", "updated_at"]  # fmt: skip
        extra_kwargs = {
            "status": {"help_text": STATUS_HELP},
            "gateway_seen_at": {
                "help_text": "The gateway's heartbeat: when its snapshot last listed the bot's process."
            },
            "api_answered_at": {
                "help_text": "The bot's own heartbeat: when its freqtrade API last answered the gateway's probe."
            },
        }
        # Names are unique per owner: the service checks it, the owner is not an input.
        validators: list[Any] = []
