"""Makes sure every mutating API request leaves an audit row, refusals and crashes included.

Services record successes (and refusals they understand, like a wrong password) in their own
transaction. This middleware records what they could not: a request refused before reaching a
service (401, 403, 404, 422, 429) or one whose transaction rolled back; of a caller's rate-limit
refusals, only the first in each window. A success that no service recorded is recorded
generically and logged, so a forgotten audit call is visible, not silent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from audit.models import AuditLog
from audit.resources import resource
from audit.services import Actor, audit_record
from multibot.errors import API_PREFIX

logger = logging.getLogger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _status_for(code: int) -> str:
    if code >= 500:
        return AuditLog.Status.ERROR
    if code in (401, 403, 429):
        return AuditLog.Status.DENIED
    if code >= 400:
        return AuditLog.Status.FAILURE
    return AuditLog.Status.SUCCESS


def view_action(view: Callable[..., Any], method: str) -> AuditLog.Action:
    """The action a request with ``method`` to ``view`` (a URL pattern's callback) is filed under.

    A view names it with a constant: ``audit_action`` on an APIView (for each method it serves), or
    ``audit_actions`` on a viewset, by DRF action (``{"create": AuditLog.Action.USER_CREATE}``), the
    action its service records, so a refused attempt is filed with its success. Anything else, a
    method the view does not serve included, is ``api_request``: the row's details say which method
    and path.
    """
    view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
    method = method.lower()
    routed = getattr(view, "actions", None)  # a viewset route: {method: DRF action}
    if routed is not None:
        drf_action = routed.get(method)
        if drf_action is None:
            return AuditLog.Action.API_REQUEST
        name = getattr(view_class, "audit_actions", {}).get(drf_action, "")
    elif view_class is not None and method in view_class.http_method_names and hasattr(view_class, method):
        name = getattr(view_class, "audit_action", "")
    else:
        return AuditLog.Action.API_REQUEST
    try:
        return AuditLog.Action(name)
    except ValueError:
        return AuditLog.Action.API_REQUEST


def describe(request: HttpRequest) -> tuple[AuditLog.Action, str]:
    """(action, resource) for a request: the view's action (``view_action``) and ``<audit_resource>:<key>``."""
    match = getattr(request, "resolver_match", None)  # set by Django when the URL resolved
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return AuditLog.Action.API_REQUEST, ""
    view_class = getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)
    kind = getattr(view_class, "audit_resource", "") or (match.url_name or "")
    key = match.kwargs.get("pk") or match.kwargs.get("name") or match.kwargs.get("task_id")
    return view_action(match.func, request.method or ""), resource(kind, key) if key and kind else kind


def _detail(response: HttpResponse) -> Any:
    if "json" not in response.get("Content-Type", "") or len(response.content) > 4000:
        return None
    try:
        return json.loads(response.content).get("detail")
    except (ValueError, AttributeError):
        return None


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method in MUTATING_METHODS and request.path.startswith(API_PREFIX):
            refusal = getattr(request, "rate_limited", None)  # set by multibot.ratelimit
            # Rate-limit refusals are aggregated, so they cannot flood the log: the first of a
            # caller in a window is recorded, the rest only counted in Redis.
            if refusal is not None and not refusal.first_in_window():
                return response
            try:
                self._record(request, response)
            except DatabaseError:
                logger.exception("could not write the audit row for %s %s", request.method, request.path)
        return response

    def _record(self, request: HttpRequest, response: HttpResponse) -> None:
        actor = Actor.from_request(request)
        status = _status_for(response.status_code)
        recorded_statuses = {recorded_status for _, recorded_status in actor.recorded}
        if status == AuditLog.Status.SUCCESS and recorded_statuses:
            return
        if status != AuditLog.Status.SUCCESS and recorded_statuses - {AuditLog.Status.SUCCESS}:
            return
        action, resource = describe(request)
        if status == AuditLog.Status.SUCCESS:
            logger.warning("no service audited %s %s; recording it generically", request.method, request.path)
        details = {"method": request.method, "path": request.path, "status_code": response.status_code}
        detail = _detail(response)
        if detail is not None:
            details["detail"] = detail
        user = None
        refusal = getattr(request, "rate_limited", None)
        if refusal is not None:
            # Refused before authentication ran: the rate limiter knows the caller's account.
            user = refusal.account()
            details.update(refusal.details())
        audit_record(actor=actor, action=action, status=status, resource=resource, details=details, user=user)
