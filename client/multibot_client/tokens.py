"""The session's tokens and where they are kept between requests (memory, or the command line's file).

The server rotates refresh tokens and treats a rotated token shown again as stolen (every session of
the account ends). So a refresh happens under the store's lock, and whoever takes the lock second
uses the tokens the first one stored instead of refreshing with a token already spent.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# An access token this close to its expiry (or a tenth of its lifetime, if shorter) is refreshed before it is sent.
EXPIRY_MARGIN_SECONDS = 5.0


def _jwt_times(token: str) -> tuple[float | None, float | None]:
    """The ``iat`` and ``exp`` claims of a JWT, read without checking its signature (the server checks it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return None, None
    if not isinstance(claims, dict):
        return None, None
    times = []
    for name in ("iat", "exp"):
        try:
            times.append(float(claims[name]))
        except (KeyError, TypeError, ValueError):
            times.append(None)
    return times[0], times[1]


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # epoch seconds; None: unknown (then only a 401 tells)
    issued_at: float | None = None

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> Tokens:
        """From a login or refresh answer (``access_token``, ``refresh_token``, ``expires_in``)."""
        access = str(answer["access_token"])
        issued_at, expires_at = _jwt_times(access)
        if expires_at is None and answer.get("expires_in") is not None:
            issued_at, expires_at = time.time(), time.time() + float(answer["expires_in"])
        return cls(access_token=access, refresh_token=answer.get("refresh_token"), expires_at=expires_at,
                   issued_at=issued_at)  # fmt: skip

    @classmethod
    def of(cls, access_token: str, refresh_token: str | None = None) -> Tokens:
        issued_at, expires_at = _jwt_times(access_token)
        return cls(access_token=access_token, refresh_token=refresh_token, expires_at=expires_at, issued_at=issued_at)

    def expired(self) -> bool:
        """Expired, or about to: within EXPIRY_MARGIN_SECONDS (or a tenth of its lifetime) of its end."""
        if self.expires_at is None:
            return False
        margin = EXPIRY_MARGIN_SECONDS
        if self.issued_at is not None:
            margin = min(margin, max(0.0, self.expires_at - self.issued_at) / 10)
        return time.time() >= self.expires_at - margin

    def as_dict(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "expires_at": self.expires_at, "issued_at": self.issued_at}  # fmt: skip


class TokenStore(Protocol):
    """Keeps the tokens a client uses; ``lock()`` is held while they are refreshed."""

    def load(self) -> Tokens | None: ...

    def save(self, tokens: Tokens | None) -> None: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...


class MemoryTokenStore:
    """Tokens in this process only (the client's default)."""

    def __init__(self, tokens: Tokens | None = None) -> None:
        self._tokens = tokens

    def load(self) -> Tokens | None:
        return self._tokens

    def save(self, tokens: Tokens | None) -> None:
        self._tokens = tokens

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        # The client holds its own lock around a refresh; in one process nothing more is needed.
        yield
