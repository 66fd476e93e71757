"""Test data built through the same code paths the product uses."""

from __future__ import annotations

import decimal
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from audit.services import Actor
from bots.models import Bot
from bots.services import bot_create
from marketdata.models import CandleSet

PASSWORD = "correct-horse-battery-9"
_sequence = itertools.count(1)


def make_user(*, username: str | None = None, is_superuser: bool = False, **fields: Any) -> Any:
    number = next(_sequence)
    return get_user_model().objects.create_user(
        username=username or f"user{number}",
        password=PASSWORD,
        email=f"user{number}@example.com",
        is_superuser=is_superuser,
        is_staff=is_superuser,
        **fields,
    )


def access_token_for(user: Any) -> str:
    return str(RefreshToken.for_user(user).access_token)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


def store_replay_markets(*pairs: str) -> None:
    """The replay exchange lists ``pairs`` as markets: their 1m CandleSet rows (no candle file is written)."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    for pair in pairs:
        CandleSet.objects.get_or_create(
            exchange="replay", pair=pair, timeframe="1m",
            defaults={"start": moment, "end": moment, "records": 0, "source": CandleSet.Source.DEMO, "synthetic": True},
        )  # fmt: skip


def make_bot(*, owner: Any, **fields: Any) -> Bot:
    values: dict[str, Any] = {
        "name": f"bot{next(_sequence)}",
        "strategy_name": "SampleStrategy",
        "stake_amount": 100,
        "pair_whitelist": ["BTC/USDT"],
    }
    values.update(fields)
    if values.get("exchange", "replay") == "replay":
        store_replay_markets(*values["pair_whitelist"])
    return bot_create(actor=Actor(user=owner, ip_address="127.0.0.1"), owner=owner, **values)


def break_row(bot: Bot) -> None:
    """A stake SQLite stores and Django cannot load back (decimal.InvalidOperation), as an upgrade may leave it."""
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stores a stake its column cannot read back; PostgreSQL refuses or keeps it exactly")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Bot._meta.db_table} SET stake_amount = 9999999999999999 WHERE id = %s", [bot.pk])
    with pytest.raises(decimal.InvalidOperation):
        Bot.objects.get(pk=bot.pk)
