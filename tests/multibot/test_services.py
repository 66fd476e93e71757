"""The user and auth services called directly: their refusals are domain errors, not HTTP exceptions."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.exceptions import APIException

from audit.services import Actor
from multibot.errors import DomainError, ForbiddenError, InvalidInputError, TooManyAttemptsError, UnauthorizedError
from multibot.services import auth, users
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

ACTOR = Actor(user=None, ip_address="127.0.0.1")


def assert_domain_only(error: BaseException) -> None:
    assert isinstance(error, DomainError)
    assert not isinstance(error, APIException)


def test_a_weak_password_is_an_invalid_password_with_every_reason(superuser):
    with pytest.raises(InvalidInputError) as refused:
        users.user_create(actor=Actor(user=superuser, ip_address=None), username="bob", password="12345")

    assert_domain_only(refused.value)
    assert refused.value.field == "password"
    assert "too short" in refused.value.message and "too common" in refused.value.message


def test_a_taken_username_is_an_invalid_username(superuser, user):
    with pytest.raises(InvalidInputError) as refused:
        users.user_create(actor=Actor(user=superuser, ip_address=None), username=user.username.upper(),
                          password="a-long-and-unusual-passphrase-7")  # fmt: skip

    assert refused.value.field == "username"


def test_deactivating_oneself_is_refused(superuser):
    with pytest.raises(InvalidInputError) as refused:
        users.user_deactivate(actor=Actor(user=superuser, ip_address=None), user=superuser)

    assert refused.value.field == "id"


def test_a_wrong_password_is_unauthorized(user):
    with pytest.raises(UnauthorizedError) as refused:
        auth.login(actor=ACTOR, username=user.username, password="wrong")

    assert_domain_only(refused.value)
    assert refused.value.status_code == 401


def test_a_locked_account_is_too_many_attempts_with_the_seconds_to_wait(user):
    for _ in range(settings.LOGIN_LOCKOUT["max_failures"]):
        with pytest.raises(UnauthorizedError):
            auth.login(actor=ACTOR, username=user.username, password="wrong")

    with pytest.raises(TooManyAttemptsError) as refused:
        auth.login(actor=ACTOR, username=user.username, password=PASSWORD)

    assert_domain_only(refused.value)
    assert 0 < refused.value.retry_after <= settings.LOGIN_LOCKOUT["window_seconds"]
    assert "locked" in refused.value.message


def test_a_garbage_refresh_token_is_unauthorized():
    with pytest.raises(UnauthorizedError):
        auth.refresh(actor=ACTOR, raw_token="not.a.token")


def test_logging_out_another_accounts_session_is_forbidden(user):
    tokens = auth.login(actor=ACTOR, username=user.username, password=PASSWORD)[1]

    with pytest.raises(ForbiddenError):
        auth.logout(actor=ACTOR, user=make_user(), raw_token=tokens.refresh_token)
