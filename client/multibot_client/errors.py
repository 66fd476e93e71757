"""What the client raises: the API's refusals by status, each with the server's ``detail``; an unreachable server."""

from __future__ import annotations

from typing import Any, TypedDict

import httpx


class FieldError(TypedDict):
    """One entry of a 422's (or an unparseable body's 400) ``detail`` list."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any


class MultibotError(Exception):
    """Anything this client raises about the server."""


class ServerUnreachable(MultibotError):  # noqa: N818 - named as HTTP names the answer
    """No answer: nothing listens at the URL, the connection broke, or the server did not answer in time."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Cannot reach {url}: {reason}")
        self.url, self.reason = url, reason


class ApiError(MultibotError):
    """The server answered with an error status. ``detail`` is its ``detail`` as sent: a sentence, or
    for validation errors a list of ``{type, loc, msg, input}``."""

    def __init__(self, status_code: int, detail: Any, *, response: httpx.Response | None = None) -> None:
        self.status_code, self.detail, self.response = status_code, detail, response
        super().__init__(f"{status_code}: {self.message}")

    @property
    def errors(self) -> list[FieldError]:
        """The field errors of a 422 (or 400), else an empty list."""
        return list(self.detail) if isinstance(self.detail, list) else []

    @property
    def message(self) -> str:
        """``detail`` as one line: the sentence itself, or each field error as ``where: what``."""
        if isinstance(self.detail, list):
            parts = []
            for error in self.detail:
                if isinstance(error, dict):
                    where = ".".join(str(part) for part in error.get("loc", []) if part not in ("body", "query"))
                    parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
                else:
                    parts.append(str(error))
            return "; ".join(parts)
        return str(self.detail)


class BadRequest(ApiError):  # noqa: N818 - named as HTTP names the answer
    """400: the body could not be read (not JSON, not the declared type)."""


class AuthenticationError(ApiError):
    """401: not logged in, wrong credentials, or a session that ended (and could not be refreshed)."""


class PermissionDenied(ApiError):  # noqa: N818 - named as HTTP names the answer
    """403: authenticated, but not allowed (a superuser's endpoint; freqtrade's own token paths)."""


class NotFound(ApiError):  # noqa: N818 - named as HTTP names the answer
    """404: no such object, or another user's (which is the same answer)."""


class Conflict(ApiError):  # noqa: N818 - named as HTTP names the answer
    """409: the object's state forbids it now (a running bot edited, a bot already stopped)."""


class PayloadTooLarge(ApiError):  # noqa: N818 - named as HTTP names the answer
    """413: the body is over the server's limit."""


class ValidationError(ApiError):
    """422: input refused; ``errors`` lists each field's problem."""


class RateLimited(ApiError):  # noqa: N818 - named as HTTP names the answer
    """429: too many requests or login attempts; ``retry_after`` is the server's Retry-After, in seconds."""

    def __init__(self, status_code: int, detail: Any, *, response: httpx.Response | None = None) -> None:
        super().__init__(status_code, detail, response=response)
        header = response.headers.get("Retry-After") if response is not None else None
        self.retry_after: int | None = int(header) if header and header.isdigit() else None


class ServerError(ApiError):
    """5xx: the server (or the bot behind a pass-through: 502, 504) failed."""


class Unavailable(ServerError):  # noqa: N818 - named as HTTP names the answer
    """503: something the operation needs is down or full (Redis, a bot not running, no free port)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: Unavailable,
}


def error_for(response: httpx.Response) -> ApiError:
    """The exception for an error answer, with the body's ``detail`` (the whole body, or its text, if it has none)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
    elif body is not None:
        detail = body
    else:
        detail = response.text.strip() or response.reason_phrase
    kind = _BY_STATUS.get(response.status_code) or (ServerError if response.status_code >= 500 else ApiError)
    return kind(response.status_code, detail, response=response)
