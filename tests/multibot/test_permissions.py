"""One IsSuperuser, used by every superuser-only endpoint."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from multibot.apis.users import UserViewSet
from multibot.permissions import IsSuperuser
from streams.apis import DeadLetterMessagesApi, DeadLetterPurgeApi, DeadLetterReplayApi


@pytest.mark.parametrize("view", [UserViewSet, DeadLetterMessagesApi, DeadLetterReplayApi, DeadLetterPurgeApi])
def test_superuser_only_endpoints_use_the_one_permission(view):
    assert IsSuperuser in view.permission_classes


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        (SimpleNamespace(is_authenticated=True, is_superuser=True, is_staff=True), True),
        (SimpleNamespace(is_authenticated=True, is_superuser=False, is_staff=True), False),
        (SimpleNamespace(is_authenticated=False, is_superuser=True, is_staff=True), False),
        (None, False),
    ],
)
def test_only_a_signed_in_superuser_passes(user, allowed):
    assert IsSuperuser().has_permission(SimpleNamespace(user=user), view=None) is allowed
