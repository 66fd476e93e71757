"""Bounds on what a request may carry, checked before anything parses it.

A body over its route's cap is a 413 and the ASGI server never reads more of it than the cap; a body
sent chunked (no Content-Length) is read here, within the cap, and given its length. A JSON body
nested deeper than a bound is a 400. Form fields, query parameters and uploaded files are counted by
Django before it parses them (``DATA_UPLOAD_MAX_*``); ``multibot.errors`` answers those refusals with
a 413. An integer in a query string is bounded where it is read: by its field's ``max_value``.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import accumulate
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from multibot.errors import API_PREFIX, error_response

Scope = MutableMapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CHUNK = 64 * 1024
# A JSON string, escapes included; possessive so that an unterminated one cannot backtrack.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(_BRACKETS)))
_STEP = bytes.maketrans(_BRACKETS, b"\x01\xff\x01\xff")  # +1 for an opening bracket, -1 (signed) for a closing one


def body_cap(path: str) -> int:
    """The largest body the view at ``path`` takes: its ``body_limit`` names a REQUEST_LIMITS cap."""
    caps = settings.REQUEST_LIMITS["body_bytes"]
    try:
        match = resolve(path)
    except Resolver404:
        return int(caps["default"])
    view_class = getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)
    return int(caps[getattr(view_class, "body_limit", "default")])


def _declared_length(raw: str | bytes | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0


def json_too_deep(body: bytes, limit: int) -> bool:
    """Whether ``body`` nests arrays and objects more than ``limit`` deep (strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    steps = _JSON_STRING.sub(b"", body).translate(_STEP, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0) > limit


class RequestLimitsMiddleware:
    """Refuses, before the view parses anything, a body over its cap, too many query parameters and a
    JSON body nested too deep."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        limits = settings.REQUEST_LIMITS
        declared, cap = _declared_length(request.META.get("CONTENT_LENGTH")), body_cap(request.path_info)
        if declared > cap:
            return error_response(413, f"The request body is larger than {cap} bytes.")
        if not request.path.startswith(API_PREFIX):
            return None
        try:
            request.GET  # noqa: B018 - parsed here to count its parameters
        except TooManyFieldsSent:
            return error_response(413, f"More than {limits['form_fields']} query parameters.")
        small = declared <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # a bigger JSON body is refused as it is read
        if "json" in (request.content_type or "") and small and json_too_deep(request.body, limits["json_depth"]):
            message = f"JSON nested deeper than {limits['json_depth']} levels."
            error = {"type": "json_invalid", "loc": ["body"], "msg": message, "input": None}
            return JsonResponse({"detail": [error]}, status=400)
        return None


# -- the ASGI side -----------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _unread() -> Receive:
    """A receive that reports an empty body (Django refuses it from its declared length) and then
    nothing more: the rest is never read, and Django stops waiting once it has answered."""
    delivered = False

    async def unread() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # cancelled when the response is sent
        raise AssertionError("unreachable")

    return unread


def _replayed(spool: IO[bytes], length: int, receive: Receive) -> Receive:
    """A receive that hands over a body read beforehand, then passes on what the server sends next."""
    done = False

    async def replayed() -> Message:
        nonlocal done
        if done:
            return await receive()
        chunk = spool.read(_CHUNK)
        done = spool.tell() >= length
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return replayed


class BoundedBodies:
    """ASGI middleware in front of Django, which would otherwise spool any body whole before looking at it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _header(scope, b"content-length"), _header(scope, b"transfer-encoding")
        if declared is None and chunked is None:
            await self.app(scope, receive, send)  # no body
        elif declared is not None:
            over = _declared_length(declared) > body_cap(scope["path"])
            await self.app(scope, _unread() if over else receive, send)
        else:
            await self._chunked(scope, receive, send)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read a chunked body up to its cap, then pass it on with a Content-Length: DRF reads no body without one."""
        cap = body_cap(scope["path"])
        with tempfile.SpooledTemporaryFile(max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE) as spool:
            length, more = 0, True
            while more and length <= cap:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                length += len(chunk)
                if length <= cap:
                    spool.write(chunk)
                more = message.get("more_body", False)
            headers = [(key, value) for key, value in scope["headers"] if key != b"transfer-encoding"]
            # Over the cap: the length read so far, more than the cap, is what Django refuses.
            scope = {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}
            spool.seek(0)
            await self.app(scope, _unread() if length > cap else _replayed(spool, length, receive), send)
