"""Requests between this project's own hosts, signed with the SECRET_KEY every host shares: no user, no token.

A worker on another machine asks the manager for a file (a candle set) with two headers: the time
the request stops being valid (``X-Multibot-Expires``, epoch seconds) and an HMAC of the request's
path and that time (``X-Multibot-Signature``). Only a holder of SECRET_KEY can make one; a signature
is good for one path and a minute, so one seen in a log opens nothing else, and not for long.
"""

from __future__ import annotations

import hmac
import time

from django.utils.crypto import salted_hmac
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

EXPIRES_HEADER = "X-Multibot-Expires"
SIGNATURE_HEADER = "X-Multibot-Signature"
# How long a signature made now stays good, and the furthest into the future a host may date one.
VALID_SECONDS = 60
_MAX_AHEAD_SECONDS = 600
_SALT = "multibot.host_signature"


class SignatureError(Exception):
    """The request is not signed by a host of this installation (the reason says why)."""


def signature(path: str, expires: int) -> str:
    return salted_hmac(_SALT, f"{path}\n{expires}", algorithm="sha256").hexdigest()


def signed_headers(path: str, *, now: float | None = None) -> dict[str, str]:
    """The headers that sign a request for ``path`` (the URL's path, ``/api/v1/...``)."""
    expires = int(now if now is not None else time.time()) + VALID_SECONDS
    return {EXPIRES_HEADER: str(expires), SIGNATURE_HEADER: signature(path, expires)}


def check_signature(path: str, *, expires: str | None, given: str | None, now: float | None = None) -> None:
    """Raises SignatureError unless ``given`` signs ``path`` until ``expires`` and that time has not passed."""
    if not expires or not given:
        raise SignatureError(f"The request is not signed ({EXPIRES_HEADER} and {SIGNATURE_HEADER} are required).")
    try:
        until = int(expires)
    except ValueError:
        raise SignatureError(f"{EXPIRES_HEADER} is not a time in epoch seconds.") from None
    now = now if now is not None else time.time()
    if not hmac.compare_digest(signature(path, until), given):
        raise SignatureError("The signature does not match: the host does not share this server's SECRET_KEY.")
    if until < now:
        raise SignatureError(f"The signature expired {int(now - until)} s ago (check the hosts' clocks).")
    if until > now + _MAX_AHEAD_SECONDS:
        raise SignatureError("The signature is dated too far ahead (check the hosts' clocks).")


class HostSignature(BasePermission):
    """A view only this project's hosts may call; a refusal is a 403 that says why."""

    def has_permission(self, request: Request, view: object) -> bool:
        try:
            check_signature(request.path, expires=request.headers.get(EXPIRES_HEADER),
                            given=request.headers.get(SIGNATURE_HEADER))  # fmt: skip
        except SignatureError as exc:
            raise PermissionDenied(str(exc)) from None
        return True
