"""freqtrade's token login to one bot, answered by Multibot: tokens for that bot and that account only.

FreqUI logs in to a bot with ``POST /api/v1/token/login`` (HTTP Basic) and renews its access token
with ``POST /api/v1/token/refresh`` (the refresh token as Bearer). Through the pass-through
(bots.passthrough) Multibot answers both itself, with freqtrade's shapes, for a Multibot user's
password. Its tokens are simplejwt tokens signed with Multibot's key, never the bot's
jwt_secret_key: their own token types (``bot_access``, ``bot_refresh``), which Multibot's JWT
authentication refuses everywhere else, naming the bot (``bot_id``), the account and the account's
token version. Every use checks them again: the bot in the path is the token's, the account is
active and its sessions were not ended since, and the account may still reach the bot (its owner,
or a superuser).

A refresh token is not rotated: FreqUI keeps the one it logged in with, as freqtrade lets it. It
ends with its lifetime, the account's sessions, or the account's loss of the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.db import transaction
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.tokens import Token

from audit import events
from audit.services import Actor
from bots.models import Bot
from bots.selectors import bot_list
from multibot.errors import NotFoundError, UnauthorizedError
from multibot.services.auth import TOKEN_VERSION_CLAIM

if TYPE_CHECKING:
    from multibot.models import User

BOT_CLAIM = "bot_id"
BOT_ACCESS, BOT_REFRESH = "bot_access", "bot_refresh"


class BotAccessToken(Token):
    """Opens the freqtrade API of one bot through the pass-through (REST and its message WebSocket)."""

    token_type = BOT_ACCESS
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]


class BotRefreshToken(Token):
    """Renews a BotAccessToken for the same bot, at ``.../ft/api/v1/token/refresh`` only."""

    token_type = BOT_REFRESH
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]


@dataclass(frozen=True)
class BotTokens:
    access_token: str
    refresh_token: str

    def as_response(self) -> dict[str, str]:
        """freqtrade's answer to token/login (its AccessAndRefreshToken)."""
        return {"access_token": self.access_token, "refresh_token": self.refresh_token}


def _issue(kind: type[Token], *, user: User, bot: Bot) -> str:
    token = kind.for_user(user)
    token[TOKEN_VERSION_CLAIM] = user.token_version
    token[BOT_CLAIM] = bot.pk
    return str(token)


def token_type_of(raw: str) -> str | None:
    """The token type a JWT claims, read without checking it: only to choose which check it gets."""
    try:
        payload: dict[str, Any] = token_backend.decode(raw, verify=False)
    except TokenBackendError:
        return None
    kind = payload.get("token_type")
    return kind if isinstance(kind, str) else None


def bot_token_user(*, raw: str, kind: type[BotAccessToken | BotRefreshToken], bot_id: int) -> tuple[User, Token]:
    """The account a token of ``kind`` proves for the bot ``bot_id``, and the token; UnauthorizedError if refused."""
    try:
        token = kind(raw)  # type: ignore[arg-type]  # simplejwt types the encoded token as a Token
    except TokenError as exc:
        raise UnauthorizedError("Token is invalid or expired") from exc
    if token.get(BOT_CLAIM) != bot_id:
        raise UnauthorizedError("This token is for another bot")
    user = get_user_model().objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None or token.get(TOKEN_VERSION_CLAIM, 0) != user.token_version:
        raise UnauthorizedError("Token has been revoked; log in again")
    if not bot_list(user=user).filter(pk=bot_id).exists():
        raise UnauthorizedError("Token has been revoked: its bot is not yours any more; log in again")
    return user, token


def _reachable_bot(*, user: User, bot_id: int) -> Bot:
    bot = bot_list(user=user).filter(pk=bot_id).first()
    if bot is None:
        raise NotFoundError("Bot not found")
    return bot


def bot_api_login(*, actor: Actor, bot_id: int) -> BotTokens:
    """An access and a refresh token for ``actor.user`` (whose password was checked, under login's
    lockout, by the HTTP Basic authentication) on one of their bots; another's bot is not found."""
    user = actor.user
    bot = _reachable_bot(user=user, bot_id=bot_id)
    with transaction.atomic():
        tokens = BotTokens(_issue(BotAccessToken, user=user, bot=bot), _issue(BotRefreshToken, user=user, bot=bot))
        update_last_login(None, user)
        events.bot_api_login_event(actor=actor, bot=bot)
    return tokens


def bot_api_refresh(*, actor: Actor, bot_id: int) -> str:
    """A new access token for ``actor.user``, authenticated by a refresh token of this bot."""
    bot = _reachable_bot(user=actor.user, bot_id=bot_id)
    with transaction.atomic():
        access = _issue(BotAccessToken, user=actor.user, bot=bot)
        events.bot_api_token_refreshed_event(actor=actor, bot=bot)
    return access
