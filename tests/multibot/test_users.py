"""User administration: superusers create, list, deactivate and re-activate users; nobody else can."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditLog
from tests.factories import PASSWORD, make_user

USERS = "/api/v1/users/"
NEW_PASSWORD = "a-long-and-unusual-passphrase-42"

pytestmark = pytest.mark.django_db


def login(api: Any, username: str, password: str = PASSWORD) -> Any:
    return api.post("/api/v1/auth/login/json", {"username": username, "password": password}, format="json")


def test_a_superuser_creates_a_user_who_can_then_log_in(admin_api, api, superuser):
    # when
    response = admin_api.post(
        USERS,
        {"username": "alice", "password": NEW_PASSWORD, "email": "alice@example.com", "full_name": "Alice A"},
        format="json",
    )

    # then
    assert response.status_code == 201
    body = response.json()
    assert "password" not in body
    assert NEW_PASSWORD not in response.content.decode()
    created = get_user_model().objects.get(username="alice")
    assert body == {
        "id": created.pk,
        "username": "alice",
        "email": "alice@example.com",
        "full_name": "Alice A",
        "is_active": True,
        "is_superuser": False,
    }
    assert created.check_password(NEW_PASSWORD)
    assert login(api, "alice", NEW_PASSWORD).status_code == 200
    row = AuditLog.objects.get(action="user_create")
    assert (row.status, row.user_id, row.resource) == ("success", superuser.pk, f"user:{created.pk}")
    assert NEW_PASSWORD not in str(row.details)


def test_a_superuser_can_create_another_superuser(admin_api):
    response = admin_api.post(
        USERS, {"username": "root2", "password": NEW_PASSWORD, "is_superuser": True}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["is_superuser"] is True
    assert get_user_model().objects.get(username="root2").is_superuser


def test_a_superuser_lists_every_user(admin_api, superuser, user, other_user):
    response = admin_api.get(USERS)

    assert response.status_code == 200
    assert [row["username"] for row in response.json()] == [superuser.username, user.username, other_user.username]
    assert all("password" not in row for row in response.json())


def test_a_superuser_retrieves_one_user(admin_api, user):
    response = admin_api.get(f"{USERS}{user.pk}")

    assert response.status_code == 200
    assert response.json()["username"] == user.username
    assert response.json()["id"] == user.pk


def test_an_unknown_user_id_is_a_404(admin_api):
    response = admin_api.get(f"{USERS}999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


def test_deactivating_a_user_refuses_their_refresh_tokens_and_logins(admin_api, api, user):
    # given
    tokens = login(api, user.username).json()

    # when
    response = admin_api.post(f"{USERS}{user.pk}/deactivate")

    # then
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    user.refresh_from_db()
    assert user.is_active is False
    refused = api.post("/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json")
    assert refused.status_code == 401
    assert login(api, user.username).status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert api.get("/api/v1/bots/").status_code == 401
    assert AuditLog.objects.get(action="user_deactivate").resource == f"user:{user.pk}"


def test_a_reactivated_user_can_log_in_again(admin_api, api, user):
    # given
    admin_api.post(f"{USERS}{user.pk}/deactivate")

    # when
    response = admin_api.post(f"{USERS}{user.pk}/activate")

    # then
    assert response.status_code == 200
    assert response.json()["is_active"] is True
    user.refresh_from_db()
    assert user.is_active is True
    assert login(api, user.username).status_code == 200


def test_the_access_tokens_of_a_deactivated_user_stay_refused_after_reactivation(admin_api, api, user):
    # given: a session from before the deactivation
    before = login(api, user.username).json()["access_token"]
    admin_api.post(f"{USERS}{user.pk}/deactivate")

    # when
    admin_api.post(f"{USERS}{user.pk}/activate")

    # then: deactivation signed that session out for good; a new login works
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {before}")
    assert api.get("/api/v1/bots/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(api, user.username).json()['access_token']}")
    assert api.get("/api/v1/bots/").status_code == 200


def test_a_weak_password_is_a_422_that_does_not_echo_the_password(admin_api):
    # when
    response = admin_api.post(USERS, {"username": "bob", "password": "12345"}, format="json")

    # then
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors
    assert all(error["loc"] == ["body", "password"] for error in errors)
    assert all(error["input"] != "12345" for error in errors)
    assert "12345" not in response.content.decode()
    assert not get_user_model().objects.filter(username="bob").exists()


@pytest.mark.parametrize("spelling", ["exact", "other case"])
def test_a_duplicate_username_is_a_422(admin_api, user, spelling):
    # given
    username = user.username if spelling == "exact" else user.username.upper()

    # when
    response = admin_api.post(USERS, {"username": username, "password": NEW_PASSWORD}, format="json")

    # then
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "username"]
    assert get_user_model().objects.filter(username__iexact=user.username).count() == 1


def test_a_non_superuser_cannot_list_users(user_api):
    response = user_api.get(USERS)

    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions"}


def test_a_non_superuser_cannot_create_users(user_api):
    response = user_api.post(USERS, {"username": "mallory", "password": NEW_PASSWORD}, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions"}
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_a_non_superuser_cannot_deactivate_anyone(user_api, other_user):
    response = user_api.post(f"{USERS}{other_user.pk}/deactivate")

    assert response.status_code == 403
    other_user.refresh_from_db()
    assert other_user.is_active is True


def test_anonymous_callers_cannot_list_users(api):
    assert api.get(USERS).status_code == 401


def test_a_superuser_cannot_deactivate_themself(admin_api, superuser):
    response = admin_api.post(f"{USERS}{superuser.pk}/deactivate")

    assert response.status_code == 422
    superuser.refresh_from_db()
    assert superuser.is_active is True


def test_users_are_never_deleted(admin_api, user):
    response = admin_api.delete(f"{USERS}{user.pk}")

    assert response.status_code == 405
    assert get_user_model().objects.filter(pk=user.pk).exists()


def test_a_superuser_can_deactivate_another_superuser(admin_api):
    # given
    second = make_user(is_superuser=True)

    # when
    response = admin_api.post(f"{USERS}{second.pk}/deactivate")

    # then
    assert response.status_code == 200
    assert response.json()["is_active"] is False
