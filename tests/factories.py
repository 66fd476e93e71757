"""Test data built through the same code paths the product uses."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from audit.services import Actor
from bots.models import Bot
from bots.services import bot_create

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


def make_bot(*, owner: Any, **fields: Any) -> Bot:
    values: dict[str, Any] = {
        "name": f"bot{next(_sequence)}",
        "strategy_name": "SampleStrategy",
        "stake_amount": 100,
        "pair_whitelist": ["BTC/USDT"],
    }
    values.update(fields)
    return bot_create(actor=Actor(user=owner, ip_address="127.0.0.1"), owner=owner, **values)
