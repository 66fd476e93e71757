"""Reading the audit log: listings scoped to who is asking, and facts services read back from rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from audit.models import AuditLog

if TYPE_CHECKING:
    from multibot.models import User


def audit_log_list(*, user: User) -> QuerySet[AuditLog]:
    entries = AuditLog.objects.select_related("user")
    if user.is_superuser:
        return entries
    return entries.filter(user=user)


def token_was_rotated(*, user: Any, jti: str) -> bool:
    """Whether a refresh token was retired by a rotation (``token_refreshed_event``), not by a logout."""
    return AuditLog.objects.filter(
        user=user, action=AuditLog.Action.TOKEN_REFRESH, status=AuditLog.Status.SUCCESS, details__rotated_jti=jti
    ).exists()
