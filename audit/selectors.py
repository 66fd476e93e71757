"""Reading the audit log, scoped to who is asking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from audit.models import AuditLog

if TYPE_CHECKING:
    from multibot.models import User


def audit_log_list(*, user: User) -> QuerySet[AuditLog]:
    entries = AuditLog.objects.select_related("user")
    if user.is_superuser:
        return entries
    return entries.filter(user=user)
