"""Strategies in the Django admin, read-only: uploads and deletions go through the API, checked and audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from strategies.models import Strategy, StrategyVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Strategy)
class StrategyAdmin(ReadOnlyAdmin):
    list_display = ["name", "owner", "current_version", "created_at"]
    list_filter = [("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "owner__username"]


@admin.register(StrategyVersion)
class StrategyVersionAdmin(ReadOnlyAdmin):
    list_display = ["strategy", "sha256", "size", "timeframe", "uploaded_by", "created_at"]
    search_fields = ["strategy__name", "sha256"]
