"""Every write to a bot: create, update, delete. Each runs in one transaction with its audit row."""

from __future__ import annotations

import secrets
import socket
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework.exceptions import APIException, ValidationError

from audit.services import Actor, audit_record
from bots.models import Bot

_SECRET_FIELDS = frozenset({"exchange_key", "exchange_secret"})


class BotConflict(APIException):
    status_code = 409
    default_detail = "The bot is running; stop it first."
    default_code = "conflict"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _allocate_api_port() -> int:
    """The lowest port of the range that no bot holds (running or not) and no program listens on."""
    first, last = settings.BOTS["api_port_first"], settings.BOTS["api_port_last"]
    held = set(Bot.objects.filter(api_port__range=(first, last)).values_list("api_port", flat=True))
    for port in range(first, last + 1):
        if port not in held and _port_is_free(port):
            return port
    raise APIException(f"No free bot API port left in {first}-{last}; widen MULTIBOT_BOT_PORT_FIRST/LAST.")


def _public_changes(fields: dict[str, Any]) -> dict[str, Any]:
    """What an audit row may say about the fields: values, except secrets which are only named."""
    return {
        name: ("<set>" if value else "<cleared>") if name in _SECRET_FIELDS else _jsonable(value)
        for name, value in fields.items()
    }


def _jsonable(value: Any) -> Any:
    # Audit details are JSON: a Decimal (stake_amount from the API) is written as exact text.
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


def bot_create(*, actor: Actor, owner: Any, **fields: Any) -> Bot:
    for attempt in range(3):
        try:
            with transaction.atomic():
                bot = Bot.objects.create(
                    owner=owner,
                    api_port=_allocate_api_port(),
                    api_username=f"multibot-{secrets.token_hex(4)}",
                    api_password=secrets.token_urlsafe(24),
                    jwt_secret_key=secrets.token_hex(32),
                    ws_token=secrets.token_urlsafe(24),
                    **fields,
                )
                audit_record(
                    actor=actor,
                    action="bot_create",
                    resource=f"bot:{bot.pk}",
                    details={"bot_name": bot.name, **_public_changes(fields)},
                )
                return bot
        except IntegrityError as exc:
            if Bot.objects.filter(owner=owner, name=fields.get("name")).exists():
                raise ValidationError({"name": [f"You already have a bot named {fields.get('name')!r}."]}) from exc
            if attempt == 2:
                raise
            # Another request took the same port between our check and insert: pick again.
    raise AssertionError("unreachable")


def bot_update(*, actor: Actor, bot: Bot, **fields: Any) -> Bot:
    with transaction.atomic():
        bot = Bot.objects.select_for_update().get(pk=bot.pk)
        if bot.is_active:
            raise BotConflict("The bot is running; stop it before changing its configuration.")
        changed = {name: value for name, value in fields.items() if getattr(bot, name) != value}
        for name, value in changed.items():
            setattr(bot, name, value)
        try:
            with transaction.atomic():
                bot.save()
        except IntegrityError as exc:
            raise ValidationError({"name": [f"You already have a bot named {bot.name!r}."]}) from exc
        audit_record(
            actor=actor,
            action="bot_update",
            resource=f"bot:{bot.pk}",
            details={"bot_name": bot.name, "changes": _public_changes(changed)},
        )
    return bot


def bot_delete(*, actor: Actor, bot: Bot) -> None:
    with transaction.atomic():
        bot = Bot.objects.select_for_update().get(pk=bot.pk)
        if bot.is_active:
            raise BotConflict("The bot is running; stop it before deleting it.")
        details = {"bot_name": bot.name, "strategy_name": bot.strategy_name, "exchange": bot.exchange}
        bot_id = bot.pk
        bot.delete()
        audit_record(actor=actor, action="bot_delete", resource=f"bot:{bot_id}", details=details)
