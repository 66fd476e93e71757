"""Rate limits counted in Redis, so every server process shares one budget per client.

Fixed windows: one INCR per request on ``ratelimit:<scope>:<who>:<window>``. A view declares its
scopes with ``rate_scopes = ("upload",)``; authenticated requests always count against "user",
anonymous ones against "anon" (by IP). Every /api/ response carries the X-RateLimit-* headers of
its tightest scope; a refusal is a 429 with Retry-After.
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
from rest_framework_simplejwt.tokens import AccessToken

from multibot.errors import API_PREFIX, error_response
from multibot.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Window:
    scope: str
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends

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
    """Who is calling, without a database: the user of a valid access token, or the account named
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
        return str(AccessToken(raw.strip())["user_id"])
    except (TokenError, KeyError):
        return None


def hit(scopes: list[tuple[str, str]]) -> list[Window]:
    """Count one request in each (scope, identity) and return the windows after counting."""
    now = int(time.time())
    pipe = redis_client().pipeline(transaction=False)
    plan = []
    for scope, who in scopes:
        limit, period = parse_rate(settings.RATE_LIMITS[scope])
        start = now - now % period
        key = redis_key("ratelimit", scope, who, start)
        pipe.incr(key)
        pipe.expire(key, period + 1)
        plan.append((scope, limit, start + period))
    results = pipe.execute()
    return [
        Window(scope=scope, limit=limit, remaining=limit - int(results[index * 2]), reset=reset)
        for index, (scope, limit, reset) in enumerate(plan)
    ]


def _view_scopes(path: str) -> tuple[str, ...]:
    try:
        match = resolve(path)
    except Resolver404:
        return ()
    view_class = getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)
    return tuple(getattr(view_class, "rate_scopes", ()))


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        scopes = self._scopes_for(request)
        try:
            windows = hit(scopes)
        except redis.RedisError as exc:
            # Fail open: an unreachable Redis must not take the API (and its health report) down.
            logger.warning("rate limiting skipped, redis unavailable: %s", type(exc).__name__)
            return self.get_response(request)

        exceeded = [window for window in windows if window.exceeded]
        if exceeded:
            window = max(exceeded, key=lambda item: item.reset)
            response: HttpResponse = error_response(429, f"Rate limit exceeded: {settings.RATE_LIMITS[window.scope]}")
            response["Retry-After"] = str(max(1, window.reset - int(time.time())))
            request.rate_limited = True  # type: ignore[attr-defined]
        else:
            window = min(windows, key=lambda item: item.remaining)
            response = self.get_response(request)
        response["X-RateLimit-Limit"] = str(window.limit)
        response["X-RateLimit-Remaining"] = str(max(0, window.remaining))
        response["X-RateLimit-Reset"] = str(window.reset)
        return response

    def _scopes_for(self, request: HttpRequest) -> list[tuple[str, str]]:
        declared = _view_scopes(request.path_info)
        ip = client_ip(request)
        user_id = _caller(request)
        scopes: list[tuple[str, Any]] = []
        for scope in declared:
            # Per-user scopes fall back to the IP for anonymous callers.
            scopes.append((scope, f"user{user_id}" if user_id and scope not in ("health", "login") else f"ip{ip}"))
        if not any(scope in ("health", "login") for scope in declared):
            scopes.append(("user", f"user{user_id}") if user_id else ("anon", f"ip{ip}"))
        return scopes
