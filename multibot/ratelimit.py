"""Rate limits counted in Redis, so every server process shares one budget per client.

Fixed windows: one INCR per request on ``ratelimit:<scope>:<who>:<window>``. A view declares its
scopes with ``rate_scopes = ("upload",)``; authenticated requests always count against "user",
anonymous ones against "anon" (by IP). Every /api/ response carries the X-RateLimit-* headers of
its tightest scope; a refusal is a 429 with Retry-After. A view with ``rate_limit_exempt = True``
(the emergency stops) is counted but never refused to a caller with a valid access token.

A refusal is marked on the request (``request.rate_limited``, a RateLimitRefusal) for the audit
middleware, which records only the first refusal of a caller in each window.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import UntypedToken

from multibot.errors import API_PREFIX, error_response
from multibot.redis_client import redis_key, request_redis

logger = logging.getLogger(__name__)

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# Scopes with a budget of their own per address, instead of the "user" or "anon" one: health checks,
# logins, and the requests of this project's other hosts (a worker fetching candles is not a visitor).
_OWN_BUDGET = ("health", "login", "internal")
# Tokens that name the caller whose "user" budget a request spends: Multibot's access tokens, and the
# access tokens of one bot's freqtrade API (bots.ftauth) that FreqUI sends through the pass-through.
_CALLER_TOKEN_TYPES = frozenset({"access", "bot_access"})


@dataclass(frozen=True)
class Window:
    scope: str
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends
    who: str  # whose budget: "user42", "ip10.0.0.1", ...

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0


def parse_rate(rate: str) -> tuple[int, int]:
    """``"100/minute"`` -> (100, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().rstrip("s")]


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _caller(request: HttpRequest) -> str | None:
    """Who is calling, without a database: the user of a valid access token (a bot's too), or the account named
    by HTTP Basic (freqtrade's client uses it) together with the IP, so a stranger naming someone
    else's account spends only their own address's budget."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    kind, _, raw = header.partition(" ")
    if kind == "Basic" and raw:
        try:
            username = base64.b64decode(raw.strip(), validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return None
        return f"basic:{username}:{client_ip(request)}" if username else None
    if kind != "Bearer" or not raw:
        return None
    try:
        token = UntypedToken(raw.strip())
    except TokenError:
        return None
    if token.get("token_type") not in _CALLER_TOKEN_TYPES or not token.get("user_id"):
        return None
    return str(token["user_id"])


def hit(scopes: list[tuple[str, str]]) -> list[Window]:
    """Count one request in each (scope, identity) and return the windows after counting.

    Through request_redis(): a slow or absent Redis costs a request a tenth of a second at most, then
    nothing for a few seconds (redis.RedisError, which the middleware answers by failing open).
    """
    now = int(time.time())
    with request_redis() as client:
        pipe = client.pipeline(transaction=False)
        plan = []
        for scope, who in scopes:
            limit, period = parse_rate(settings.RATE_LIMITS[scope])
            start = now - now % period
            key = redis_key("ratelimit", scope, who, start)
            pipe.incr(key)
            pipe.expire(key, period + 1)
            plan.append((scope, who, limit, start + period))
        results = pipe.execute()
    return [
        Window(scope=scope, limit=limit, remaining=limit - int(results[index * 2]), reset=reset, who=who)
        for index, (scope, who, limit, reset) in enumerate(plan)
    ]


@dataclass(frozen=True)
class RateLimitRefusal:
    """A request the rate limiter refused: what the audit row of the refusal says, and who it names."""

    window: Window
    caller: str | None  # as _caller() tells it

    def first_in_window(self) -> bool:
        """Counts this refusal; True for the caller's first one in this window of this scope."""
        key = redis_key("ratelimit-refused", self.window.scope, self.window.who, self.window.reset)
        try:
            with request_redis() as client:
                pipe = client.pipeline(transaction=False)
                refusals, _ = pipe.incr(key).expireat(key, self.window.reset + 1).execute()
        except redis.RedisError:
            return True  # unsure: a row too many rather than a refusal unrecorded
        return int(refusals) == 1

    def account(self) -> Any:
        """The account the caller's token is for, or the one HTTP Basic named (its password unchecked)."""
        from django.contrib.auth import get_user_model

        if self.caller is None:
            return None
        users = get_user_model().objects
        if self.caller.startswith("basic:"):
            return users.filter(username=self.caller.split(":")[1]).first()
        return users.filter(pk=self.caller).first()

    def details(self) -> dict[str, Any]:
        if self.caller is None:
            credentials = "none"
        else:
            credentials = "http_basic_unchecked" if self.caller.startswith("basic:") else "bearer"
        return {
            "reason": "rate_limited",
            "scope": self.window.scope,
            "limit": settings.RATE_LIMITS[self.window.scope],
            "window_ends": self.window.reset,
            "credentials": credentials,
            "note": "Further refusals of this caller in this window are not recorded.",
        }


def _view_class(path: str) -> Any:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        view_class = _view_class(request.path_info)
        caller = _caller(request)
        scopes = self._scopes_for(request, view_class=view_class, caller=caller)
        try:
            windows = hit(scopes)
        except redis.RedisError as exc:
            # Fail open: an unreachable Redis must not take the API (and its health report) down,
            # nor slow it (request_redis() skips Redis for a while after a failure).
            logger.warning("rate limiting skipped, redis unavailable: %s", type(exc).__name__)
            return self.get_response(request)

        exceeded = [window for window in windows if window.exceeded]
        # The kill switch answers a caller with a signed token whatever they spent (the view then
        # checks the account); strangers and Basic callers, which it does not accept, stay limited.
        exempt = (
            getattr(view_class, "rate_limit_exempt", False) and caller is not None and not caller.startswith("basic:")
        )
        if exceeded and not exempt:
            window = max(exceeded, key=lambda item: item.reset)
            response: HttpResponse = error_response(429, f"Rate limit exceeded: {settings.RATE_LIMITS[window.scope]}")
            response["Retry-After"] = str(max(1, window.reset - int(time.time())))
            request.rate_limited = RateLimitRefusal(window=window, caller=caller)  # type: ignore[attr-defined]
        else:
            window = min(windows, key=lambda item: item.remaining)
            response = self.get_response(request)
        response["X-RateLimit-Limit"] = str(window.limit)
        response["X-RateLimit-Remaining"] = str(max(0, window.remaining))
        response["X-RateLimit-Reset"] = str(window.reset)
        return response

    def _scopes_for(self, request: HttpRequest, *, view_class: Any, caller: str | None) -> list[tuple[str, str]]:
        declared = tuple(getattr(view_class, "rate_scopes", ()))
        ip = client_ip(request)
        scopes: list[tuple[str, Any]] = []
        for scope in declared:
            # Per-user scopes fall back to the IP for anonymous callers.
            scopes.append((scope, f"user{caller}" if caller and scope not in _OWN_BUDGET else f"ip{ip}"))
        if not any(scope in _OWN_BUDGET for scope in declared):
            scopes.append(("user", f"user{caller}") if caller else ("anon", f"ip{ip}"))
        return scopes
