"""Who may call an endpoint beyond being signed in; ownership of objects is the selectors' business."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsSuperuser(BasePermission):
    """Superusers only (Django's ``is_staff`` alone is not enough)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)
