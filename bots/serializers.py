"""Bot input and output shapes; the rules themselves live in bots.validation."""

from __future__ import annotations

import functools
from typing import Any

from rest_framework import serializers

from bots import validation
from bots.models import Bot
from bots.selectors import bot_name_taken


@functools.cache
def known_exchanges() -> frozenset[str]:
    import ccxt  # heavy import: only when a bot names a real exchange

    return frozenset(ccxt.exchanges)


class BotSerializer(serializers.ModelSerializer):
    stake_amount = serializers.DecimalField(max_digits=24, decimal_places=8, coerce_to_string=False)
    total_profit = serializers.DecimalField(max_digits=24, decimal_places=8, coerce_to_string=False, read_only=True)
    pair_whitelist = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    exchange_key = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=512)
    exchange_secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=512)
    has_exchange_keys = serializers.BooleanField(read_only=True)

    class Meta:
        model = Bot
        fields = [
            "id", "name", "strategy_name", "exchange", "stake_currency", "stake_amount",
            "timeframe", "pair_whitelist", "max_open_trades", "dry_run",
            "status", "pid", "total_trades", "profitable_trades", "total_profit",
            "exchange_key", "exchange_secret", "has_exchange_keys", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "status", "pid", "total_trades", "profitable_trades", "created_at", "updated_at"]
        # Uniqueness per owner is checked in validate(); the owner is not an input.
        validators: list[Any] = []

    DEFAULTS: dict[str, Any] = {
        "exchange": "replay", "stake_currency": "USDT", "timeframe": "5m", "pair_whitelist": [],
        "max_open_trades": 3, "dry_run": True, "exchange_key": "", "exchange_secret": "",
    }  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Rules span fields (pairs vs stake currency, live vs keys): check the bot as it would be.
        if self.instance is None:
            merged = dict(self.DEFAULTS)
        else:
            merged = {
                field: getattr(self.instance, field)
                for field in [*self.DEFAULTS, "name", "strategy_name", "stake_amount"]
            }
        merged.update(attrs)
        try:
            self._check(merged, attrs)
        except validation.ConfigError as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}, code="value_error") from exc
        return attrs

    def _check(self, merged: dict[str, Any], attrs: dict[str, Any]) -> None:
        validation.check_bot_name(merged["name"])
        validation.check_strategy_name(merged["strategy_name"])
        validation.check_stake_currency(merged["stake_currency"])
        validation.check_stake_amount(merged["stake_amount"])
        validation.check_timeframe(merged["timeframe"])
        validation.check_max_open_trades(merged["max_open_trades"])
        validation.check_pairs(merged["pair_whitelist"], merged["stake_currency"])
        if "exchange" in attrs:
            validation.check_exchange(
                merged["exchange"], known_exchanges() if merged["exchange"] != "replay" else frozenset()
            )
        validation.check_trading_mode(
            exchange=merged["exchange"],
            dry_run=merged["dry_run"],
            has_keys=bool(merged["exchange_key"] and merged["exchange_secret"]),
        )
        owner = self.context["request"].user if self.instance is None else self.instance.owner
        if "name" in attrs and bot_name_taken(
            owner=owner, name=merged["name"], exclude_id=getattr(self.instance, "id", None)
        ):
            raise validation.ConfigError("name", f"You already have a bot named {merged['name']!r}.")
