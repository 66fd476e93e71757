"""/api/v1/bots/{id}/ft/<freqtrade path>: a bot's own freqtrade API, reached with Multibot credentials.

The caller authenticates as a Multibot user: a Multibot JWT, HTTP Basic (so that freqtrade-client
works unchanged), or an access token of this very bot from the pass-through's own freqtrade login.
FreqUI logs in to a bot the way it logs in to freqtrade: ``POST .../ft/api/v1/token/login`` with
HTTP Basic, then ``POST .../ft/api/v1/token/refresh`` with its refresh token as Bearer. Multibot
answers both itself, in freqtrade's shapes, with tokens good for this bot and this user only
(bots.ftauth), never with a freqtrade token. The bot's message WebSocket,
``ws://.../ft/api/v1/message/ws?token=<access token>``, is relayed by realtime.consumers.BotMessageRelay.
Pages of the configured FreqUI origins (MULTIBOT_FREQUI_ORIGINS) get CORS headers on these paths only.

The request goes on to the bot's API server on 127.0.0.1 with the bot's generated credentials,
which never travel back: only a few response headers are passed on, and the bot's secrets are
masked in any body that happens to contain them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import authentication, serializers
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import events
from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from bots import ftauth
from bots.commands import BotStatus
from bots.ftclient import FreqtradeApiError, client_for
from bots.models import Bot
from bots.selectors import bot_list, runs_here
from multibot.authentication import BasicAuthentication, JWTAuthentication
from multibot.errors import (
    DomainError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    as_api_exception,
)
from multibot.openapi import ErrorOutput

FORWARDED_PREFIX = "api/v1/"
# freqtrade's own token endpoints would sign freqtrade JWTs with the bot's jwt_secret_key: a
# credential for the bot itself, usable without Multibot. Never forwarded: Multibot answers these
# exact paths itself (BotFreqtradeLoginApi, BotFreqtradeRefreshApi); any other spelling is refused.
TOKEN_PATHS = frozenset({"api/v1/token/login", "api/v1/token/refresh"})
# What the caller's request may tell the bot. Never Authorization or Cookie: those are Multibot's.
REQUEST_HEADERS = ("Content-Type", "Accept")
# What the bot's answer may tell the caller; hop-by-hop, Set-Cookie, WWW-Authenticate, Server stay here.
# No Location: freqtrade's API does not redirect (a trailing slash is a 404), and it would name the bot's port.
RESPONSE_HEADERS = ("content-type", "content-disposition", "cache-control", "etag", "last-modified")
TIMEOUT_SECONDS = 30.0
MASK = b"********"


class BotUnreachableError(UnavailableError):
    """The bot is not running, or nothing answers on its port."""


class BotTimedOutError(UnavailableError):
    status_code = 504


class BotCredentialsRefusedError(DomainError):
    """The bot runs with a config older than its row."""

    status_code = 502


@dataclass(frozen=True)
class BotAnswer:
    status_code: int
    content: bytes
    headers: dict[str, str]


def forwarded_path(ft_path: str) -> str:
    """The bot-side path, URL-encoded again; only freqtrade's API, and no way out of it with dot segments."""
    segments = ft_path.split("/")
    if not ft_path.startswith(FORWARDED_PREFIX) or any(segment in (".", "..") for segment in segments):
        raise NotFoundError("Only freqtrade API paths (api/v1/...) are forwarded")
    if posixpath.normpath(ft_path).rstrip("/") in TOKEN_PATHS:
        raise ForbiddenError(
            "freqtrade's token endpoints are not forwarded: Multibot answers POST api/v1/token/login and "
            "api/v1/token/refresh, spelled exactly so, with tokens for this bot; or send your Multibot "
            "credentials (HTTP Basic, or a Bearer token from /api/v1/auth/login/json) with every request"
        )
    return quote(ft_path, safe="/:@!$&'()*+,;=~")


def _secrets(bot: Bot) -> list[bytes]:
    return [value.encode() for value in bot.secret_values()]


def _masked(content: bytes, secrets: list[bytes]) -> bytes:
    for secret in secrets:
        content = content.replace(secret, MASK)
    return content


def forward(
    *, actor: Actor, bot: Bot, method: str, path: str, query: str, body: bytes, headers: dict[str, str]
) -> BotAnswer:
    """Send one request to the bot's API and return its answer, safe to hand to the caller.

    Mutating requests the bot answered are audited here; refusals before that by the audit middleware.
    """
    unreachable = f"Bot {bot.name} is not reachable; is it running?"
    # A bot Multibot believes stopped gets nothing: whatever listens on its old port is not the bot.
    if bot.status not in Bot.ACTIVE_STATUSES:
        raise BotUnreachableError(unreachable)
    if bot.status == BotStatus.UNRESPONSIVE:
        # Its API has stopped answering the gateway's probes: a call would wait out the whole timeout.
        raise BotUnreachableError(f"Bot {bot.name} is unresponsive: its API has stopped answering; "
                                  "it is restarted if that lasts")  # fmt: skip
    if not runs_here(bot):
        # Its API listens on its own machine's 127.0.0.1: here that port is someone else's, never told its credentials.
        raise BotUnreachableError(f"Bot {bot.name} runs on host {bot.host}: its API is reachable on that machine only.")
    try:
        with client_for(bot, timeout=TIMEOUT_SECONDS) as client:
            response = client.request(method, f"{path}?{query}" if query else path, content=body or None,
                                      headers=headers)  # fmt: skip
    except FreqtradeApiError as exc:
        if exc.timed_out:
            raise BotTimedOutError(f"Bot {bot.name} did not answer within {TIMEOUT_SECONDS:g} seconds") from None
        raise BotUnreachableError(unreachable) from None
    if response.status_code == 401:
        # Our credentials, not the caller's: the bot runs with a config older than its row.
        raise BotCredentialsRefusedError(
            f"Bot {bot.name} refused Multibot's credentials; restart it to renew its config"
        )
    secrets = _secrets(bot)
    kept = {name: _masked(value.encode(), secrets).decode() for name, value in response.headers.items()
            if name.lower() in RESPONSE_HEADERS}  # fmt: skip
    answer = BotAnswer(response.status_code, _masked(response.content, secrets), kept)
    if method not in ("GET", "HEAD", "OPTIONS"):
        events.bot_passthrough_event(actor=actor, bot=bot, method=method, ft_path=path, status_code=answer.status_code)
    return answer


def _multibot_refusal(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOutput, description=description)


# -- this bot's own tokens (bots.ftauth) ----------------------------------------------------------------
def _bearer(request: Request) -> str | None:
    parts = authentication.get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode()
    except UnicodeDecodeError:
        return None


def _path_bot_id(request: Request) -> int:
    return int(request.parser_context["kwargs"]["pk"])


class BotAccessAuthentication(authentication.BaseAuthentication):
    """An access token of the bot in the path, from its token/login or token/refresh.

    Another Bearer token (a Multibot access token, or no JWT at all) is left to JWTAuthentication,
    which refuses this kind everywhere: it opens one bot's freqtrade API and nothing else.
    """

    kind: type[ftauth.BotAccessToken | ftauth.BotRefreshToken] = ftauth.BotAccessToken

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = _bearer(request)
        if raw is None or ftauth.token_type_of(raw) != ftauth.BOT_ACCESS:
            return None
        return self._check(request, raw)

    def _check(self, request: Request, raw: str) -> tuple[Any, Any]:
        try:
            return ftauth.bot_token_user(raw=raw, kind=self.kind, bot_id=_path_bot_id(request))
        except UnauthorizedError as exc:
            raise as_api_exception(exc) from exc

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class BotRefreshAuthentication(BotAccessAuthentication):
    """A refresh token of the bot in the path, as FreqUI sends it to token/refresh; any other Bearer is refused."""

    kind = ftauth.BotRefreshToken

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = _bearer(request)
        return None if raw is None else self._check(request, raw)


class BotAccessScheme(OpenApiAuthenticationExtension):
    target_class = "bots.passthrough.BotAccessAuthentication"
    name = "botAccessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        description = "An access token of this bot, from its .../ft/api/v1/token/login or token/refresh."
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": description}


class BotRefreshScheme(OpenApiAuthenticationExtension):
    target_class = "bots.passthrough.BotRefreshAuthentication"
    name = "botRefreshToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        description = "The refresh token of this bot, from its .../ft/api/v1/token/login."
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": description}


class BotTokensOutput(serializers.Serializer):
    """freqtrade's AccessAndRefreshToken."""

    access_token = serializers.CharField(help_text="Bearer token for this bot's freqtrade API and message WebSocket.")
    refresh_token = serializers.CharField(help_text="Renews the access token at token/refresh; it is not rotated.")

    class Meta:
        ref_name = "BotFreqtradeTokens"


class BotAccessTokenOutput(serializers.Serializer):
    """freqtrade's AccessToken."""

    access_token = serializers.CharField(help_text="Bearer token for this bot's freqtrade API and message WebSocket.")

    class Meta:
        ref_name = "BotFreqtradeAccessToken"


_LOGIN_DESCRIPTION = """freqtrade's token login, answered by Multibot: what FreqUI sends to a bot it is given the URL
`<server>/api/v1/bots/{id}/ft` of (any body, ignored; FreqUI's is `{}`). HTTP Basic with a Multibot username and
password, under the lockout of Multibot's own login. The tokens are Multibot's, for this bot and this user only:
Bearer on `.../ft/api/v1/...` and as `?token=` on the bot's message WebSocket
`ws(s)://<server>/api/v1/bots/{id}/ft/api/v1/message/ws`; the rest of the API refuses them. They stop working when the
account is deactivated, its sessions are ended, or the bot is no longer the user's."""

_REFRESH_DESCRIPTION = """freqtrade's token refresh, answered by Multibot: the refresh token from this bot's token/login
as Bearer (any body, ignored). A new access token; the refresh token stays as it is, as freqtrade's does."""


class _BotTokenApi(APIView):
    """One of freqtrade's token endpoints of a bot, answered here; never forwarded (TOKEN_PATHS)."""

    http_method_names = ["post"]
    parser_classes: list[type] = []  # FreqUI posts {}; nothing is read from the body
    rate_scopes = ("login",)
    audit_resource = Kind.BOT


@extend_schema(
    summary="Log in to one bot's freqtrade API (FreqUI)",
    description=_LOGIN_DESCRIPTION,
    request=None,
    responses={
        200: BotTokensOutput,
        401: _multibot_refusal("No credentials, or an incorrect username or password (freqtrade's answer)."),
        404: _multibot_refusal("No such bot of yours."),
        503: _multibot_refusal("Logins are paused: the failed-login counts (Redis) do not answer."),
    },
)
class BotFreqtradeLoginApi(_BotTokenApi):
    # A Multibot user's password, as FreqUI sends it; a refused one is audited as a login to a bot.
    authentication_classes = [BasicAuthentication]
    basic_auth_via = events.FREQTRADE_TOKEN
    audit_action = AuditLog.Action.LOGIN

    def post(self, request: Request, pk: int) -> Response:
        tokens = ftauth.bot_api_login(actor=Actor.from_request(request), bot_id=pk)
        return Response(tokens.as_response())

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, AuthenticationFailed):
            # As freqtrade answers a wrong password: no challenge, which would make a browser open its own
            # password dialog over FreqUI's. Missing credentials keep theirs (Basic), as freqtrade's do.
            response.headers.pop("WWW-Authenticate", None)
        return response


@extend_schema(
    summary="Renew the access token of one bot's freqtrade API (FreqUI)",
    description=_REFRESH_DESCRIPTION,
    request=None,
    responses={
        200: BotAccessTokenOutput,
        401: _multibot_refusal("No refresh token of this bot, or it is expired or revoked."),
    },
)
class BotFreqtradeRefreshApi(_BotTokenApi):
    authentication_classes = [BotRefreshAuthentication]
    audit_action = AuditLog.Action.TOKEN_REFRESH

    def post(self, request: Request, pk: int) -> Response:
        return Response({"access_token": ftauth.bot_api_refresh(actor=Actor.from_request(request), bot_id=pk)})


# -- any other freqtrade call ------------------------------------------------------------------------------
_BOT_ANSWER = OpenApiResponse(OpenApiTypes.ANY, description="The bot's own answer, with its status and Content-Type.")


@extend_schema(
    parameters=[
        OpenApiParameter("ft_path", {"type": "string", "pattern": r"^api/v1/[\w./-]*$"}, OpenApiParameter.PATH,
                         description="A path of freqtrade's REST API, like api/v1/profit.",
                         examples=[OpenApiExample("profit", value="api/v1/profit")]),
    ],
    request={"application/json": OpenApiTypes.ANY},
    responses={
        (200, "*/*"): _BOT_ANSWER,
        ("default", "*/*"): _BOT_ANSWER,
        403: _multibot_refusal("Not allowed: freqtrade's token endpoints are not forwarded (Multibot answers "
                               "api/v1/token/login and api/v1/token/refresh, spelled exactly so)."),
        404: _multibot_refusal("No such bot of yours, or not a freqtrade API path (api/v1/...)."),
        502: _multibot_refusal("The bot refused Multibot's credentials: restart it."),
        503: _multibot_refusal("The bot is not running or not reachable."),
        504: _multibot_refusal("The bot did not answer in time."),
    },
)  # fmt: skip
class BotFreqtradeApi(APIView):
    """Any freqtrade API call on one of the user's bots: ``/api/v1/bots/7/ft/api/v1/profit``.

    freqtrade's ``api/v1/token/login`` and ``api/v1/token/refresh`` are operations of their own,
    answered by Multibot; another spelling of their paths (``token/login/``) is refused here with a
    403 that says what to do. What a caller must never get is a freqtrade token: a credential for
    the bot itself, which no ownership check, audit row or account deactivation of Multibot would govern.
    """

    authentication_classes = [BotAccessAuthentication, JWTAuthentication, BasicAuthentication]
    http_method_names = ["get", "post", "put", "patch", "delete"]
    parser_classes: list[type] = []  # the body goes on as bytes, unparsed
    audit_action = AuditLog.Action.BOT_FT_PASSTHROUGH
    audit_resource = Kind.BOT

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[object, str]:
        # The bot decides what it can answer to the caller's Accept; Multibot's own errors are JSON.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request: Request, pk: int, ft_path: str) -> HttpResponse:
        bot = bot_list(user=request.user).filter(pk=pk).first()
        if bot is None:
            raise NotFound("Bot not found")
        headers = {name: request.headers[name] for name in REQUEST_HEADERS if request.headers.get(name)}
        answer = forward(
            actor=Actor.from_request(request), bot=bot, method=request.method, path=forwarded_path(ft_path),
            query=request.META.get("QUERY_STRING", ""), body=request.body, headers=headers,
        )  # fmt: skip
        response = HttpResponse(answer.content, status=answer.status_code)
        for name, value in answer.headers.items():
            response[name] = value
        return response

    post = put = patch = delete = get
