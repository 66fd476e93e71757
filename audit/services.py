"""Writing audit rows. Services call ``audit_record`` inside their own transaction."""

from __future__ import annotations

import getpass
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from audit.models import AuditLog


@dataclass
class Actor:
    """Who is acting and from where; built once per request and handed to services."""

    user: AbstractBaseUser | None
    ip_address: str | None
    # Shown as the row's user when no account acts (bootstrap, the gateway, a listener).
    name: str = ""
    # (row id, status) of what services recorded during this request; see AuditMiddleware.
    recorded: list[tuple[int, str]] = field(default_factory=list)

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        # Cached on the Django request so the audit middleware sees what the services recorded.
        django_request = getattr(request, "_request", request)
        actor = getattr(django_request, "audit_actor", None)
        user = getattr(request, "user", None)
        if actor is None:
            actor = cls(user=None, ip_address=_valid_ip(django_request.META.get("REMOTE_ADDR")))
            django_request.audit_actor = actor
        if user is not None and user.is_authenticated:
            actor.user = user
        return actor

    @classmethod
    def system(cls) -> Actor:
        return cls(user=None, ip_address=None, name="system")

    @classmethod
    def operator(cls, command: str) -> Actor:
        """Someone on the server running ``manage.py <command>``: no account, named by the command and
        the login it ran under (``manage.py bots stop (alice)``)."""
        return cls(user=None, ip_address=None, name=f"manage.py {command} ({_login_name()})"[:150])


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container without a passwd entry)
        return f"uid {os.getuid()}"


def _valid_ip(raw: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(raw)) if raw else None
    except ValueError:
        return None


def audit_record(
    *,
    actor: Actor,
    action: str,
    status: str = AuditLog.Status.SUCCESS,
    resource: str = "",
    details: dict[str, Any] | None = None,
    user: AbstractBaseUser | None = None,
) -> AuditLog:
    """Append one row. ``user`` overrides the actor's user (a failed login names the account)."""
    subject = user if user is not None else actor.user
    entry = AuditLog.objects.create(
        user=subject,
        username=getattr(subject, "username", "") or actor.name,
        action=action,
        resource=resource,
        ip_address=actor.ip_address,
        status=status,
        details=details or {},
    )
    actor.recorded.append((entry.pk, str(status)))
    transaction.on_commit(lambda: _announce(entry))
    return entry


def _announce(entry: AuditLog) -> None:
    """Publish a committed row on ``AUDIT_EVENTS``; the database row is the record, this is the news."""
    from streams.bus import announce
    from streams.catalog import AUDIT_EVENTS

    payload = {
        "id": entry.pk, "timestamp": entry.timestamp.isoformat(), "user_id": entry.user_id,
        "user": entry.username, "action": entry.action, "resource": entry.resource,
        "ip_address": entry.ip_address, "status": entry.status, "details": entry.details,
    }  # fmt: skip
    # The patient client: news dropped for a 100 ms hiccup would be missing from every live audit feed.
    announce(AUDIT_EVENTS, type="audit_entry", payload=payload, request_id=f"audit-{entry.pk}")
