"""Reading the audit log, scoped to who is asking."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditLog


def audit_log_list(*, user) -> QuerySet[AuditLog]:
    entries = AuditLog.objects.select_related("user")
    if user.is_superuser:
        return entries
    return entries.filter(user=user)
