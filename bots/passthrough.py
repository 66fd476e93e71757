"""/api/v1/bots/{id}/ft/<freqtrade path>: a bot's own freqtrade API, reached with Multibot credentials.

The caller authenticates as a Multibot user (JWT, or HTTP Basic so that freqtrade-client works
unchanged); the request goes on to the bot's API server on 127.0.0.1 with the bot's generated
credentials, which never travel back: only a few response headers are passed on, and the bot's
secrets are masked in any body that happens to contain them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import quote

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from audit import events
from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from bots.commands import BotStatus
from bots.ftclient import FreqtradeApiError, client_for
from bots.models import Bot
from bots.selectors import bot_list
from multibot.authentication import BasicAuthentication, JWTAuthentication
from multibot.errors import DomainError, ForbiddenError, NotFoundError, UnavailableError
from multibot.openapi import ErrorOutput

FORWARDED_PREFIX = "api/v1/"
# freqtrade's own token endpoints would sign freqtrade JWTs with the bot's jwt_secret_key: a
# credential for the bot itself, usable without Multibot. Refused (see BotFreqtradeApi).
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
            "freqtrade tokens are not issued through Multibot: send your Multibot credentials "
            "(HTTP Basic, or a Bearer token from /api/v1/auth/login/json) with every request"
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


_BOT_ANSWER = OpenApiResponse(OpenApiTypes.ANY, description="The bot's own answer, with its status and Content-Type.")


def _multibot_refusal(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOutput, description=description)


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
        403: _multibot_refusal("Not allowed: freqtrade's own token endpoints are not forwarded."),
        404: _multibot_refusal("No such bot of yours, or not a freqtrade API path (api/v1/...)."),
        502: _multibot_refusal("The bot refused Multibot's credentials: restart it."),
        503: _multibot_refusal("The bot is not running or not reachable."),
        504: _multibot_refusal("The bot did not answer in time."),
    },
)  # fmt: skip
class BotFreqtradeApi(APIView):
    """Any freqtrade API call on one of the user's bots: ``/api/v1/bots/7/ft/api/v1/profit``.

    freqtrade's token endpoints answer 403 with an explanation rather than 404: the path exists
    on the bot, and a client that tries it (FreqUI logs in this way) should learn what to do
    instead. What it must not get is a freqtrade token: a credential for the bot itself, which
    no ownership check, audit row or account deactivation of Multibot would govern.
    """

    authentication_classes = [JWTAuthentication, BasicAuthentication]
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
