"""Jobs in the admin: read only (every change goes through jobs.services, audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "owner", "status", "progress", "step", "attempt", "worker_host", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("id", "owner__username")

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
