"""User administration by superusers: create, deactivate (users are never deleted: audit rows name them)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from audit import events
from audit.services import Actor
from multibot.errors import InvalidInputError
from multibot.services.auth import revoke_all_sessions

User = get_user_model()


def password_generate() -> str:
    """A password for an account whose creator gave none: shown to them once, stored only hashed."""
    return secrets.token_urlsafe(18)


def user_create(*, actor: Actor, username: str, password: str, email: str = "", full_name: str = "",
                is_superuser: bool = False, via: str = "") -> Any:  # fmt: skip
    if not username:
        raise InvalidInputError("username", "A username is required.")
    for field, value in (("username", username), ("email", email)):
        try:
            # The model field's own validators: its length, a username's characters, an email's form.
            User._meta.get_field(field).run_validators(value)
        except DjangoValidationError as exc:
            raise InvalidInputError(field, " ".join(exc.messages)) from exc
    candidate = User(username=username, email=email, full_name=full_name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise InvalidInputError("password", " ".join(exc.messages)) from exc
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise InvalidInputError("username", "A user with that username already exists.")
        user = User.objects.create_user(
            username=username, password=password, email=email, full_name=full_name,
            is_superuser=is_superuser, is_staff=is_superuser,
        )  # fmt: skip
        events.user_created_event(actor=actor, user=user, via=via)
    return user


def user_deactivate(*, actor: Actor, user: Any) -> Any:
    """Refuse every future request of the user and sign out all their sessions."""
    if actor.user is not None and actor.user.pk == user.pk:
        raise InvalidInputError("id", "You cannot deactivate your own account.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.is_active = False
        user.save(update_fields=["is_active"])
        revoked = revoke_all_sessions(user.pk)
        events.user_deactivated_event(actor=actor, user=user, sessions_revoked=revoked)
    return user


def user_activate(*, actor: Actor, user: Any) -> Any:
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.is_active = True
        user.save(update_fields=["is_active"])
        events.user_activated_event(actor=actor, user=user)
    return user
