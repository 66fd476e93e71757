"""Login (JSON and form), lockout, refresh with rotation and reuse detection, logout, inactive users."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from audit.models import AuditLog
from tests.factories import PASSWORD, access_token_for, make_user

LOGIN_JSON = "/api/v1/auth/login/json"
LOGIN_FORM = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
MAX_FAILURES = settings.LOGIN_LOCKOUT["max_failures"]

pytestmark = pytest.mark.django_db


def login(api: APIClient, username: str, password: str = PASSWORD) -> Any:
    return api.post(LOGIN_JSON, {"username": username, "password": password}, format="json")


def tokens_for(api: APIClient, user: Any) -> dict[str, Any]:
    response = login(api, user.username)
    assert response.status_code == 200, response.content
    return response.json()


def refresh(api: APIClient, token: str, key: str = "refresh_token") -> Any:
    return api.post(REFRESH, {key: token}, format="json")


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# Login


def test_json_login_returns_a_bearer_token_pair_and_the_user(api, user):
    # when
    response = login(api, user.username)

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"] and body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] == int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    assert body["user"] == {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "is_active": True,
        "is_superuser": False,
    }


def test_the_access_token_from_login_opens_the_bots_list(api, user):
    # given
    access = tokens_for(api, user)["access_token"]

    # when
    response = bearer(access).get("/api/v1/bots/")

    # then
    assert response.status_code == 200


def test_the_bots_list_refuses_a_request_without_a_token(api):
    response = api.get("/api/v1/bots/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_a_successful_login_is_audited_and_sets_last_login(api, user):
    login(api, user.username)

    row = AuditLog.objects.get(action="login")
    assert (row.status, row.user_id, row.username) == ("success", user.pk, user.username)
    user.refresh_from_db()
    assert user.last_login is not None


def test_form_login_accepts_a_form_encoded_body(api, user):
    # when
    response = api.post(
        LOGIN_FORM,
        urlencode({"username": user.username, "password": PASSWORD}),
        content_type="application/x-www-form-urlencoded",
    )

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["username"] == user.username
    assert bearer(body["access_token"]).get("/api/v1/bots/").status_code == 200


def test_json_login_refuses_a_form_body_as_an_unsupported_media_type(api, user):
    response = api.post(
        LOGIN_JSON,
        urlencode({"username": user.username, "password": PASSWORD}),
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert "access_token" not in response.json()


def test_form_login_refuses_a_json_body_as_an_unsupported_media_type(api, user):
    response = api.post(LOGIN_FORM, {"username": user.username, "password": PASSWORD}, format="json")

    assert response.status_code == 415
    assert "access_token" not in response.json()


def test_a_login_without_a_password_is_a_422_naming_the_field(api, user):
    response = api.post(LOGIN_JSON, {"username": user.username}, format="json")

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "password"]]


def test_a_wrong_password_is_a_401_and_an_audited_failure_naming_the_account(api, user):
    # when
    response = login(api, user.username, "not-the-password")

    # then
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}
    row = AuditLog.objects.get(action="login")
    assert row.status == "failure"
    assert row.user_id == user.pk
    assert row.username == user.username
    assert row.details["reason"] == "bad_credentials"
    assert "not-the-password" not in str(row.details)


def test_an_unknown_username_gets_the_same_401_as_a_wrong_password(api, user):
    # given
    wrong_password = login(api, user.username, "not-the-password")

    # when
    unknown_user = login(api, "nobody-by-that-name", "not-the-password")

    # then
    assert unknown_user.status_code == 401
    assert unknown_user.json() == wrong_password.json()
    row = AuditLog.objects.filter(action="login", details__username="nobody-by-that-name").get()
    assert row.status == "failure"
    assert row.user_id is None


# Lockout


def test_after_too_many_failures_even_the_right_password_is_refused_with_retry_after(api, user):
    # given
    for _ in range(MAX_FAILURES):
        assert login(api, user.username, "not-the-password").status_code == 401

    # when
    response = login(api, user.username)

    # then
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert int(response["Retry-After"]) <= settings.LOGIN_LOCKOUT["window_seconds"]
    assert "locked" in response.json()["detail"].lower()
    assert "access_token" not in response.json()
    denied = AuditLog.objects.filter(action="login", status="denied").get()
    assert denied.user_id == user.pk
    assert denied.details["reason"] == "account_locked"


def test_the_lockout_is_per_account(api, user, other_user):
    # given
    for _ in range(MAX_FAILURES):
        login(api, user.username, "not-the-password")

    # when
    response = login(api, other_user.username)

    # then
    assert response.status_code == 200


def test_a_successful_login_before_the_limit_resets_the_failure_count(api, user):
    # given
    for _ in range(MAX_FAILURES - 1):
        assert login(api, user.username, "not-the-password").status_code == 401
    assert login(api, user.username).status_code == 200

    # when: as many failures again, which would lock the account had the count not been reset
    for _ in range(MAX_FAILURES - 1):
        assert login(api, user.username, "not-the-password").status_code == 401
    response = login(api, user.username)

    # then
    assert response.status_code == 200


# Refresh


def test_refresh_returns_a_new_token_pair(api, user):
    # given
    first = tokens_for(api, user)

    # when
    response = refresh(api, first["refresh_token"])

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int)
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert bearer(body["access_token"]).get("/api/v1/bots/").status_code == 200


def test_refresh_accepts_the_body_key_refresh(api, user):
    first = tokens_for(api, user)

    response = refresh(api, first["refresh_token"], key="refresh")

    assert response.status_code == 200
    assert response.json()["refresh_token"] != first["refresh_token"]


def test_refresh_without_a_token_is_a_422(api):
    response = api.post(REFRESH, {}, format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "refresh_token"]


def test_a_rotated_refresh_token_is_refused(api, user):
    # given
    old = tokens_for(api, user)["refresh_token"]
    assert refresh(api, old).status_code == 200

    # when
    response = refresh(api, old)

    # then
    assert response.status_code == 401
    assert "access_token" not in response.json()


def test_reusing_a_rotated_refresh_token_signs_out_every_session_of_the_user(api, user, other_user):
    # given: two sessions of the user, one rotated; and another user's session
    old = tokens_for(api, user)["refresh_token"]
    rotated = refresh(api, old).json()["refresh_token"]
    second_session = tokens_for(api, user)["refresh_token"]
    other_session = tokens_for(api, other_user)["refresh_token"]

    # when
    reuse = refresh(api, old)

    # then
    assert reuse.status_code == 401
    row = AuditLog.objects.get(action="token_refresh", details__reason="reused_refresh_token")
    assert row.status == "denied"
    assert row.user_id == user.pk
    assert row.details["sessions_revoked"] == 2
    assert refresh(api, rotated).status_code == 401
    assert refresh(api, second_session).status_code == 401
    assert refresh(api, other_session).status_code == 200


def test_an_access_token_is_refused_as_a_refresh_token(api, user):
    access = tokens_for(api, user)["access_token"]

    response = refresh(api, access)

    assert response.status_code == 401
    assert "access_token" not in response.json()


def test_a_garbage_refresh_token_is_refused(api):
    response = refresh(api, "not.a.jwt")

    assert response.status_code == 401
    assert set(response.json()) == {"detail"}


# Logout


def test_logout_blacklists_the_refresh_token(api, user):
    # given
    tokens = tokens_for(api, user)
    client = bearer(tokens["access_token"])

    # when
    response = client.post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json")

    # then
    assert response.status_code == 200
    assert refresh(api, tokens["refresh_token"]).status_code == 401
    assert AuditLog.objects.filter(action="logout", status="success", user=user).count() == 1


def test_logout_needs_authentication(api, user):
    tokens = tokens_for(api, user)

    response = api.post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json")

    assert response.status_code == 401
    assert refresh(api, tokens["refresh_token"]).status_code == 200


def test_logging_out_another_users_refresh_token_is_forbidden(api, user, other_user):
    # given
    victim = tokens_for(api, other_user)["refresh_token"]
    attacker = bearer(access_token_for(user))

    # when
    response = attacker.post(LOGOUT, {"refresh_token": victim}, format="json")

    # then
    assert response.status_code == 403
    assert set(response.json()) == {"detail"}
    assert refresh(api, victim).status_code == 200


# Inactive users


def test_an_inactive_user_cannot_log_in_even_with_the_right_password(api):
    user = make_user(is_active=False)

    response = login(api, user.username)

    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}


def test_an_access_token_of_a_user_made_inactive_is_refused(api, user):
    # given
    access = tokens_for(api, user)["access_token"]
    user.is_active = False
    user.save(update_fields=["is_active"])

    # when
    response = bearer(access).get("/api/v1/bots/")

    # then
    assert response.status_code == 401


def test_a_refresh_token_of_a_user_made_inactive_is_refused(api, user):
    # given: made inactive behind the API's back, so no session was revoked
    tokens = tokens_for(api, user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    # when
    response = refresh(api, tokens["refresh_token"])

    # then
    assert response.status_code == 401
    assert "access_token" not in response.json()


@pytest.mark.django_db
def test_a_logged_out_refresh_token_is_refused_without_signing_out_other_sessions(api, user):
    # given: two sessions of one user, one of which logs out
    first = login(api, user.username, PASSWORD).json()
    second = login(api, user.username, PASSWORD).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")
    assert client.post(LOGOUT, {"refresh_token": first["refresh_token"]}, format="json").status_code == 200
    # when: the logged-out token is presented again
    again = refresh(api, first["refresh_token"])
    # then: refused, and the other session lives on
    assert again.status_code == 401
    assert again.json()["detail"] == "Refresh token has been revoked"
    assert refresh(api, second["refresh_token"]).status_code == 200


# Lockout per account and address

FT = "/api/v1/bots/999999/ft/api/v1/profit"  # no such bot: authenticated callers get a 404


def basic(username: str, password: str) -> dict[str, str]:
    import base64

    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def login_from(api: APIClient, address: str, username: str, password: str = PASSWORD) -> Any:
    return api.post(LOGIN_JSON, {"username": username, "password": password}, format="json", REMOTE_ADDR=address)


def test_five_wrong_basic_passwords_from_another_address_do_not_lock_the_admin_out(api, superuser):
    # given: five wrong Basic passwords for the admin from 127.0.0.2
    guesses = [api.get(FT, REMOTE_ADDR="127.0.0.2", **basic(superuser.username, f"guess{n}")) for n in range(5)]
    assert [guess.status_code for guess in guesses] == [401] * 5

    # when
    json_login = login_from(api, "127.0.0.1", superuser.username)
    basic_call = api.get(FT, REMOTE_ADDR="127.0.0.1", **basic(superuser.username, PASSWORD))
    access = json_login.json()["access_token"]
    stop_all = bearer(access).post("/api/v1/emergency/stop-all", {}, format="json", REMOTE_ADDR="127.0.0.1")

    # then: the admin gets in from 127.0.0.1, both ways, and reaches the kill switch
    assert json_login.status_code == 200
    assert basic_call.status_code == 404 and basic_call.json() == {"detail": "Bot not found"}
    assert stop_all.status_code == 202
    # while 127.0.0.2 stays locked out of the admin, even with the right password
    assert api.get(FT, REMOTE_ADDR="127.0.0.2", **basic(superuser.username, PASSWORD)).status_code == 429
    assert login_from(api, "127.0.0.2", superuser.username).status_code == 429


def test_wrong_json_login_passwords_lock_only_the_address_they_came_from(api, user):
    # given
    for _ in range(MAX_FAILURES):
        assert login_from(api, "10.0.0.2", user.username, "not-the-password").status_code == 401

    # when
    elsewhere = login_from(api, "10.0.0.1", user.username)
    there = login_from(api, "10.0.0.2", user.username)

    # then
    assert elsewhere.status_code == 200
    assert there.status_code == 429
    assert "your address" in there.json()["detail"]
    assert api.get(FT, REMOTE_ADDR="10.0.0.2", **basic(user.username, PASSWORD)).status_code == 429


def test_a_guess_spread_over_many_addresses_locks_new_addresses_but_not_the_owners(api, user, settings):
    # given: the owner used 10.0.0.1 (JSON login) and 10.0.0.5 (Basic) before
    settings.LOGIN_LOCKOUT = {**settings.LOGIN_LOCKOUT, "max_account_failures": 8}
    assert login_from(api, "10.0.0.1", user.username).status_code == 200
    assert api.get(FT, REMOTE_ADDR="10.0.0.5", **basic(user.username, PASSWORD)).status_code == 404
    # and eight guesses came from four other addresses, none of them locked on its own
    for attacker in ("10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4"):
        for _ in range(2):
            assert login_from(api, attacker, user.username, "not-the-password").status_code == 401

    # when
    new_address = login_from(api, "10.0.0.9", user.username)
    new_address_basic = api.get(FT, REMOTE_ADDR="10.0.0.9", **basic(user.username, PASSWORD))
    owner = login_from(api, "10.0.0.1", user.username)
    owner_basic = api.get(FT, REMOTE_ADDR="10.0.0.5", **basic(user.username, PASSWORD))

    # then
    assert new_address.status_code == 429
    assert "new addresses" in new_address.json()["detail"]
    assert new_address_basic.status_code == 429
    assert owner.status_code == 200
    assert owner_basic.status_code == 404
    # the owner's success reopens nothing for the guessers
    assert login_from(api, "10.9.0.1", user.username).status_code == 429


def test_the_account_wide_limit_counts_every_address(api, user, settings):
    # given: a limit per address the guesser never reaches
    settings.LOGIN_LOCKOUT = {**settings.LOGIN_LOCKOUT, "max_failures": 100, "max_account_failures": 3}
    for address in ("10.9.0.1", "10.9.0.2", "10.9.0.3"):
        assert login_from(api, address, user.username, "not-the-password").status_code == 401

    # when
    fourth = login_from(api, "10.9.0.4", user.username, "not-the-password")

    # then
    assert fourth.status_code == 429
    assert 0 < int(fourth["Retry-After"]) <= settings.LOGIN_LOCKOUT["window_seconds"]


# Signing out every session


def test_a_detected_refresh_token_reuse_ends_the_accounts_access_tokens_too(api, user, other_user):
    # given: two sessions of the user, the first rotated once; and another user's session
    first = tokens_for(api, user)
    rotated = refresh(api, first["refresh_token"]).json()
    second = tokens_for(api, user)
    other = tokens_for(api, other_user)
    access_tokens = [first["access_token"], rotated["access_token"], second["access_token"]]
    assert all(bearer(token).get("/api/v1/bots/").status_code == 200 for token in access_tokens)

    # when: the rotated refresh token is presented again
    reuse = refresh(api, first["refresh_token"])

    # then: every access token of the account is refused, on the API and on the pass-through
    assert reuse.status_code == 401
    assert "all sessions of this account were signed out" in reuse.json()["detail"]
    for token in access_tokens:
        assert bearer(token).get("/api/v1/bots/").status_code == 401
        assert bearer(token).get(FT).status_code == 401
    assert bearer(other["access_token"]).get("/api/v1/bots/").status_code == 200
    # and the owner can sign in again
    assert bearer(tokens_for(api, user)["access_token"]).get("/api/v1/bots/").status_code == 200


def test_a_refreshed_pair_keeps_working_until_a_reuse(api, user):
    # given
    pair = refresh(api, tokens_for(api, user)["refresh_token"]).json()

    # when
    again = refresh(api, pair["refresh_token"])

    # then: the token version is carried through rotation
    assert again.status_code == 200
    assert bearer(pair["access_token"]).get("/api/v1/bots/").status_code == 200
    assert bearer(again.json()["access_token"]).get("/api/v1/bots/").status_code == 200


@pytest.mark.django_db
def test_while_redis_is_gone_logins_are_a_503_that_says_why_and_signed_in_sessions_keep_working(api, user, settings):
    import time

    from multibot.redis_client import request_redis_reset
    from tests.support.processes import free_port

    # given: a signed-in session, then a Redis that nothing answers on
    token = login(api, user.username).json()["access_token"]
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    request_redis_reset()
    try:
        # when
        started = time.monotonic()
        refused = login(api, user.username)
        wrong = login(api, user.username, "not the password")
        took = time.monotonic() - started
        session = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/bots/")
    finally:
        request_redis_reset()
    # then: a clear refusal for both (an uncounted guess is no guess), not a 500; the token still reads
    assert (refused.status_code, wrong.status_code) == (503, 503)
    assert "Logins are paused" in refused.json()["detail"]
    assert took < 2
    assert session.status_code == 200
