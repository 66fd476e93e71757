from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from audit.models import AuditLog


@pytest.mark.django_db
def test_first_run_creates_a_superuser_with_a_generated_password_printed_once(monkeypatch):
    monkeypatch.delenv("MULTIBOT_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("MULTIBOT_ADMIN_USER", "operator")
    first, second = io.StringIO(), io.StringIO()

    call_command("bootstrap", stdout=first)
    call_command("bootstrap", stdout=second)

    password = first.getvalue().rsplit(": ", 1)[1].strip()
    operator = get_user_model().objects.get(username="operator")
    assert operator.is_superuser and operator.check_password(password)
    assert len(password) >= 20
    assert "password" not in second.getvalue()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    created = AuditLog.objects.get(action="user_create", resource=f"user:{operator.pk}")
    assert created.username == "system"
    assert created.details["username"] == "operator"


@pytest.mark.django_db
def test_a_given_admin_password_is_used_and_never_printed(monkeypatch):
    monkeypatch.setenv("MULTIBOT_ADMIN_USER", "root2")
    monkeypatch.setenv("MULTIBOT_ADMIN_PASSWORD", "a-chosen-passphrase-77")
    out = io.StringIO()

    call_command("bootstrap", stdout=out)

    assert get_user_model().objects.get(username="root2").check_password("a-chosen-passphrase-77")
    assert "a-chosen-passphrase-77" not in out.getvalue()
