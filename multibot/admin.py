"""Admin for users; changes made here are audited like API changes."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction

from audit.services import Actor, audit_record
from multibot.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Profile", {"fields": ("full_name",)}))
    list_display = ["username", "email", "full_name", "is_active", "is_superuser", "last_login"]

    def save_model(self, request, obj: User, form, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            # Field names only: a password change must not put the hash in the audit log.
            audit_record(
                actor=Actor.from_request(request),
                action="user_update" if change else "user_create",
                resource=f"user:{obj.pk}",
                details={"username": obj.username, "via": "admin", "changed": list(form.changed_data)},
            )

    def has_delete_permission(self, request, obj: User | None = None) -> bool:
        # Users are deactivated, never deleted: their audit rows keep naming them.
        return False
