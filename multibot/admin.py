"""Admin for users; changes made here are audited like API changes."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction

from audit import events
from audit.services import Actor
from multibot.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Profile", {"fields": ("full_name",)}))
    list_display = ["username", "email", "full_name", "is_active", "is_superuser", "last_login"]

    def save_model(self, request, obj: User, form, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            events.user_admin_saved_event(actor=Actor.from_request(request), user=obj, created=not change,
                                          changed_fields=form.changed_data)  # fmt: skip

    def has_delete_permission(self, request, obj: User | None = None) -> bool:
        # Users are deactivated, never deleted: their audit rows keep naming them.
        return False
