"""Who a WebSocket is: a JWT in the subprotocol (``bearer.<jwt>``) or a single-use ticket, and where it comes from.

A JWT is checked exactly as the REST API checks it (``multibot.authentication.JWTAuthentication``:
signature, expiry, an active account, the account's token version). A ticket, for clients that
cannot put a token in a subprotocol, is issued by ``POST /api/v1/ws/ticket``, lives
``REALTIME["ticket_seconds"]`` in Redis and is consumed by the first handshake that shows it (GETDEL:
two handshakes racing with one ticket cannot both win). Browsers send an Origin header: one whose
host is not in ALLOWED_HOSTS is refused before any consumer runs; a client without one (not a
browser, so no page of another site acting in a user's name) is let through to authenticate.

A bot's relayed message WebSocket (``/api/v1/bots/<id>/ft/api/v1/message/ws``) takes its token
where FreqUI puts it, in the URL (``?token=``), as freqtrade's own socket does: an access token of
that bot (bots.ftauth), short-lived and good for nothing else, or a Multibot access token for API
clients. Pages of the FreqUI origins (settings.FREQUI_ORIGINS) may open it too.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http.request import split_domain_port, validate_host
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError

from bots import ftauth
from bots.models import Bot
from bots.selectors import bot_list
from multibot.authentication import JWTAuthentication
from multibot.errors import UnauthorizedError
from multibot.redis_client import redis_client, redis_key
from realtime.protocol import BEARER_PREFIX, TICKET_PREFIX

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]


@dataclass(frozen=True)
class Identity:
    """The account behind a socket as it authenticated: a later token version, a changed superuser flag
    or the end of its credential's lifetime ends the socket."""

    user: Any
    token_version: int
    is_superuser: bool
    expires_at: float  # epoch seconds: the access token's own expiry (a ticket: an access token's lifetime)


# -- tickets -------------------------------------------------------------------------------------
def _ticket_key(ticket: str) -> str:
    # Only a digest is stored: whoever reads Redis cannot replay a ticket still valid.
    return redis_key("ws-ticket", hashlib.sha256(ticket.encode()).hexdigest())


def ticket_store(*, user: Any) -> str:
    """A new ticket for ``user``, valid ``REALTIME["ticket_seconds"]`` and once. Raises redis.RedisError."""
    ticket = secrets.token_urlsafe(32)
    # The socket it opens lives as long as an access token issued now would.
    expires_at = int(time.time() + settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    redis_client().set(_ticket_key(ticket), f"{user.pk}:{user.token_version}:{expires_at}",
                       ex=settings.REALTIME["ticket_seconds"])  # fmt: skip
    return ticket


def ticket_consume(ticket: str) -> Identity | None:
    """The identity a ticket was issued to, if it is unused and unexpired; it is spent either way."""
    if not ticket or len(ticket) > 128:
        return None
    try:
        stored = redis_client().getdel(_ticket_key(ticket))
    except redis.RedisError as exc:
        logger.warning("ticket not checked, Redis unavailable: %s", exc)
        return None
    if not stored:
        return None
    user_id, version, expires_at = [*str(stored).split(":"), "", ""][:3]
    user = get_user_model().objects.filter(pk=int(user_id), is_active=True).first()
    # Sessions ended between issue and use (a deactivation, a reused refresh token): so is the ticket.
    if user is None or user.token_version != int(version or 0) or not expires_at:
        return None
    return Identity(user=user, token_version=user.token_version, is_superuser=user.is_superuser,
                    expires_at=float(expires_at))  # fmt: skip


# -- JWT -----------------------------------------------------------------------------------------
def token_identity(raw: str) -> Identity | None:
    """The identity an access token proves, by the REST API's own rules; None when refused."""
    authentication = JWTAuthentication()
    try:
        validated = authentication.get_validated_token(raw.encode())
        user = authentication.get_user(validated)
    except (TokenError, AuthenticationFailed):
        return None
    return Identity(user=user, token_version=user.token_version, is_superuser=user.is_superuser,
                    expires_at=float(validated["exp"]))  # fmt: skip


def identity_still_valid(identity: Identity) -> bool:
    """Whether the account may keep its socket: its credential unexpired, the account still active,
    its sessions not ended since, and its superuser flag (which chose the socket's groups) unchanged."""
    if time.time() >= identity.expires_at:
        return False
    unchanged = {"is_active": True, "token_version": identity.token_version, "is_superuser": identity.is_superuser}
    return get_user_model().objects.filter(pk=identity.user.pk, **unchanged).exists()


def credentials(scope: Scope) -> tuple[str, str] | None:
    """("bearer" | "ticket", value) from the handshake's subprotocols.

    Never from the URL: an access log keeps the query string, and a handshake refused before its
    ticket is spent (a foreign Origin) would leave a usable ticket there.
    """
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(BEARER_PREFIX):
            return "bearer", protocol[len(BEARER_PREFIX) :]
        if protocol.startswith(TICKET_PREFIX):
            return "ticket", protocol[len(TICKET_PREFIX) :]
    return None


def authenticate(scope: Scope) -> Identity | None:
    """The socket's identity, or None (refused). Sync: it reads the database and Redis."""
    found = credentials(scope)
    if found is None:
        return None
    kind, value = found
    return token_identity(value) if kind == "bearer" else ticket_consume(value)


# -- a bot's relayed message WebSocket -------------------------------------------------------------
@dataclass(frozen=True)
class BotSocket:
    """Who opened a bot's relayed socket, and the bot (its credentials for the relay's own use only)."""

    identity: Identity
    bot: Bot


def _query_token(scope: Scope) -> str:
    values = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1")).get("token") or [""]
    return values[-1]


def _bot_token_identity(raw: str, bot_id: int) -> Identity | None:
    try:
        user, token = ftauth.bot_token_user(raw=raw, kind=ftauth.BotAccessToken, bot_id=bot_id)
    except UnauthorizedError:
        return None
    return Identity(user=user, token_version=user.token_version, is_superuser=user.is_superuser,
                    expires_at=float(token["exp"]))  # fmt: skip


def bot_socket_open(scope: Scope) -> BotSocket | None:
    """The identity behind ``?token=`` and the bot in the path it may reach; None when refused. Sync."""
    raw, bot_id = _query_token(scope), int(scope["url_route"]["kwargs"]["pk"])
    if not raw or len(raw) > 4096:
        return None
    bot_token = ftauth.token_type_of(raw) == ftauth.BOT_ACCESS
    identity = _bot_token_identity(raw, bot_id) if bot_token else token_identity(raw)
    if identity is None:
        return None
    bot = bot_list(user=identity.user).filter(pk=bot_id).first()
    return None if bot is None else BotSocket(identity=identity, bot=bot)


def bot_socket_still_valid(socket: BotSocket) -> bool:
    """Whether the account may keep the socket: as ``identity_still_valid``, and the bot still within its reach."""
    if not identity_still_valid(socket.identity):
        return False
    return bot_list(user=socket.identity.user).filter(pk=socket.bot.pk).exists()


class QueryTokenRedaction(logging.Filter):
    """Masks ``token=`` in the query strings a log line quotes (a server logs each handshake's path and query)."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(self._TOKEN.sub(r"\1********", arg) if isinstance(arg, str) else arg
                                for arg in record.args)  # fmt: skip
        return True


# -- Origin --------------------------------------------------------------------------------------
def origin_allowed(headers: Iterable[tuple[bytes, bytes]], *, also: Iterable[str] = ()) -> bool:
    """No Origin header: allowed (not a browser). Otherwise its host must be one of ALLOWED_HOSTS, or the
    origin itself (scheme, host and port) one of ``also``."""
    origins = [value for name, value in headers if name.lower() == b"origin"]
    if not origins:
        return True
    if len(origins) > 1:
        return False
    try:
        parts = urlsplit(origins[0].decode("latin-1"))
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (a sandboxed page, a file) and anything else that names no site
    if any((allowed.scheme, allowed.netloc) == (parts.scheme, parts.netloc) for allowed in map(urlsplit, also)):
        return True
    host, _ = split_domain_port(parts.netloc)
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


class OriginCheck:
    """ASGI middleware for a WebSocket route: refuses the handshake (HTTP 403) from a foreign page.

    ``frequi``: the pages of settings.FREQUI_ORIGINS are welcome too (a bot's relayed socket).
    """

    def __init__(self, application: Any, *, frequi: bool = False) -> None:
        self.application = application
        self.frequi = frequi

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        also = settings.FREQUI_ORIGINS if self.frequi else ()
        if origin_allowed(scope.get("headers") or [], also=also):
            return await self.application(scope, receive, send)
        logger.info("websocket refused: origin not allowed")
        return await WebsocketDenier()(scope, receive, send)
