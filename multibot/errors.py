"""One error format for the whole API: ``{"detail": "..."}``, or a list of field errors for 400/422.

Services raise the domain errors below (no HTTP in them, so a Celery task or a stream handler can
call the same service); the DRF exception handler maps them, and DRF's own, to statuses and shapes
once. ApiErrorMiddleware catches what never reached DRF (unknown paths, crashes, Django's own HTML
error pages) so /api/ never answers HTML.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Inputs of these fields are never echoed back in an error.
_SECRET_FIELD = re.compile(r"password|secret|token|key", re.IGNORECASE)
# An error quotes at most this much of an input (or a message that repeats it), then an ellipsis.
QUOTE_CHARS = 200
_ELLIPSIS = "…"
_TYPE_BY_CODE = {"required": "missing", "null": "missing", "blank": "missing", "invalid": "value_error"}
_DEFAULT_DETAIL = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not enough permissions",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal server error",
}


class DomainError(Exception):
    """A rule of the domain refused the operation; ``message`` is the sentence the user reads."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    status_code = 404


class ForbiddenError(DomainError):
    status_code = 403


class ConflictError(DomainError):
    """The object's state forbids it now (a running bot cannot be edited); it may work later."""

    status_code = 409


class UnavailableError(DomainError):
    """A resource the operation needs is exhausted or down (no free port, Redis unreachable)."""

    status_code = 503


class UnauthorizedError(DomainError):
    """The credentials presented were refused (a wrong password; a token invalid, expired or revoked)."""

    status_code = 401


class TooManyAttemptsError(DomainError):
    """Refused for now after too many attempts; it may work again in ``retry_after`` seconds."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def as_api_exception(exc: UnauthorizedError | TooManyAttemptsError) -> exceptions.APIException:
    """DRF's own exception for a refusal whose answer carries a header (WWW-Authenticate, Retry-After).

    Also for DRF authentication classes, which must raise DRF's exceptions.
    """
    if isinstance(exc, TooManyAttemptsError):
        return exceptions.Throttled(wait=exc.retry_after, detail=exc.message)
    return exceptions.AuthenticationFailed(exc.message)


class InvalidInputError(DomainError):
    """One input value breaks a rule; ``field`` names it (``loc`` of the 422)."""

    status_code = 422

    def __init__(self, field: str, message: str, *, code: str = "value_error", location: str = "body") -> None:
        super().__init__(message)
        self.field, self.code, self.location = field, code, location


class QueryValidationError(exceptions.ValidationError):
    """A 422 about query-string parameters (``loc`` starts with "query" instead of "body")."""

    location = "query"


class ContentTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = _DEFAULT_DETAIL[413]


def request_limit_error(exc: Exception) -> exceptions.APIException | None:
    """Django's refusals of an oversized request, raised while DRF reads it, as the 413 they are."""
    from django.conf import settings

    if isinstance(exc, RequestDataTooBig):
        return ContentTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    if isinstance(exc, TooManyFieldsSent):
        return ContentTooLarge(f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields or query parameters.")
    if isinstance(exc, TooManyFilesSent):
        return ContentTooLarge(f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files.")
    return None


def field_errors(detail: Any, data: Any, loc: tuple[str, ...] = ("body",)) -> list[dict[str, Any]]:
    """Flatten DRF's nested ``{field: [ErrorDetail]}`` into ``[{type, loc, msg, input}]``."""
    if isinstance(detail, dict):
        errors: list[dict[str, Any]] = []
        for field, sub in detail.items():
            field_loc = loc if field in ("non_field_errors", "__all__") else (*loc, str(field))
            sub_data = data.get(field) if isinstance(data, dict) else None
            errors.extend(field_errors(sub, sub_data, field_loc))
        return errors
    if isinstance(detail, list):
        if all(isinstance(item, (dict, list)) for item in detail) and detail:
            errors = []
            for index, item in enumerate(detail):
                item_data = data[index] if isinstance(data, list) and index < len(data) else None
                errors.extend(field_errors(item, item_data, (*loc, str(index))))
            return errors
        return [error for item in detail for error in field_errors(item, data, loc)]
    code = getattr(detail, "code", "invalid") or "invalid"
    secret = any(_SECRET_FIELD.search(part) for part in loc[1:])
    return [
        {
            "type": _TYPE_BY_CODE.get(code, code),
            "loc": list(loc),
            "msg": _shortened(str(detail), QUOTE_CHARS * 2),
            "input": "********" if secret and data not in (None, "") else _jsonable(data),
        }
    ]


def _shortened(text: str, limit: int = QUOTE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + _ELLIPSIS


def _jsonable(value: Any) -> Any:
    """The input as JSON, or (when it is long) the first QUOTE_CHARS characters of it as text."""
    if isinstance(value, str):
        return _shortened(value)
    if value is None or isinstance(value, (int, float, bool, list, dict)):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            return _shortened(str(value))
        return value if len(text) <= QUOTE_CHARS else _shortened(text)
    return _shortened(str(value))


def _request_query(context: dict[str, Any]) -> Any:
    request = context.get("request")
    return None if request is None else request.query_params


def _request_data(context: dict[str, Any]) -> Any:
    request = context.get("request")
    if request is None:
        return None
    try:
        # Uploaded files are not echoed back.
        return {key: value for key, value in request.data.items() if not hasattr(value, "read")}
    except Exception:  # noqa: BLE001 - the body is what failed to parse
        return None


def _domain_error_response(exc: DomainError, context: dict[str, Any]) -> Response:
    if isinstance(exc, InvalidInputError):
        loc = (exc.location,)
        data = _request_data(context) if exc.location == "body" else _query_data(context)
        detail = {exc.field: [exceptions.ErrorDetail(exc.message, code=exc.code)]}
        return Response({"detail": field_errors(detail, data, loc)}, status=exc.status_code)
    return Response({"detail": exc.message}, status=exc.status_code)


def _with_auth_header(exc: exceptions.APIException, context: dict[str, Any]) -> exceptions.APIException:
    # What DRF's view does for its own AuthenticationFailed: a 401 names the scheme to authenticate with.
    view, request = context.get("view"), context.get("request")
    if isinstance(exc, exceptions.AuthenticationFailed) and view is not None and request is not None:
        exc.auth_header = view.get_authenticate_header(request)
    return exc


def _query_data(context: dict[str, Any]) -> Any:
    request = context.get("request")
    return dict(request.query_params.items()) if request is not None else None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = request_limit_error(exc) or exc
    if isinstance(exc, (UnauthorizedError, TooManyAttemptsError)):
        exc = _with_auth_header(as_api_exception(exc), context)
    elif isinstance(exc, DomainError):
        return _domain_error_response(exc, context)
    if isinstance(exc, exceptions.ParseError):
        body = [{"type": "json_invalid", "loc": ["body"], "msg": str(exc.detail), "input": None}]
        return Response({"detail": body}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        loc = ("query",) if getattr(exc, "location", "body") == "query" else ("body",)
        body = field_errors(exc.detail, _request_data(context) if loc == ("body",) else _request_query(context), loc)
        return Response({"detail": body}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)

    # Imported here: rest_framework.views loads the authentication classes, which import this module.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        # Not an API exception: a crash. Log it with its traceback; answer without internals.
        request = context.get("request")
        logger.exception("unhandled error on %s", getattr(request, "path", "?"))
        return Response({"detail": _DEFAULT_DETAIL[500]}, status=500)

    if isinstance(exc, exceptions.NotAuthenticated):
        response.data = {"detail": _DEFAULT_DETAIL[401]}
    elif isinstance(exc, exceptions.PermissionDenied) and exc.detail == exceptions.PermissionDenied.default_detail:
        response.data = {"detail": _DEFAULT_DETAIL[403]}
    elif isinstance(response.data, dict) and "detail" in response.data:
        # simplejwt adds code/messages; the contract is one human sentence.
        response.data = {"detail": str(response.data["detail"])}
    else:
        response.data = {"detail": _DEFAULT_DETAIL.get(response.status_code, str(exc))}
    return response


def error_response(status_code: int, detail: str | None = None) -> JsonResponse:
    return JsonResponse({"detail": detail or _DEFAULT_DETAIL.get(status_code, "Error")}, status=status_code)


class ApiErrorMiddleware:
    """Turns any non-JSON error answer or uncaught exception under /api/ into the JSON contract."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and "json" not in response.get("Content-Type", "")
        ):
            replacement = error_response(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            for header, value in response.items():
                if header.startswith("X-RateLimit-"):
                    replacement[header] = value
            return replacement
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        logger.exception("unhandled error on %s", request.path)
        return error_response(500)
