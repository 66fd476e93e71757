"""Who may open /ws: a JWT as the REST API takes it, a single-use ticket, from no foreign page."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from multibot.redis_client import redis_client
from multibot.services import auth as account_sessions
from realtime import auth
from tests import factories
from tests.realtime.conftest import Socket, bearer, run


def handshake(*protocols: str, path: str = "/ws", origin: str | None = None) -> Socket:
    headers = [(b"origin", origin.encode())] if origin is not None else []

    async def scenario():
        socket = await Socket(*protocols, path=path, headers=headers).open()
        if socket.accepted:
            await socket.close()
        return socket

    return run(scenario)


def test_no_credential_is_refused():
    assert handshake().accepted is False
    assert handshake("multibot").accepted is False


def test_a_forged_token_is_refused(user):
    token = factories.access_token_for(user)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    assert handshake(*bearer(forged)).accepted is False
    assert handshake(*bearer(token)).accepted is True


def test_an_expired_token_is_refused(user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))

    assert handshake(*bearer(str(token))).accepted is False


def test_a_token_of_a_deactivated_account_is_refused(user):
    token = factories.access_token_for(user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert handshake(*bearer(token)).accepted is False


def test_a_token_issued_before_the_accounts_sessions_were_ended_is_refused(user):
    token = factories.access_token_for(user)
    account_sessions.revoke_all_sessions(user.pk)

    assert handshake(*bearer(token)).accepted is False


def test_a_refresh_token_is_not_an_access_token(user):
    from rest_framework_simplejwt.tokens import RefreshToken

    assert handshake(*bearer(str(RefreshToken.for_user(user)))).accepted is False


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8002", "http://localhost", "https://localhost:443"])
def test_a_page_of_an_allowed_host_may_connect(user, origin):
    assert handshake(*bearer(factories.access_token_for(user)), origin=origin).accepted is True


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example", "file://", "ws:"])
def test_a_page_of_another_origin_is_refused_even_with_a_valid_token(user, origin):
    assert handshake(*bearer(factories.access_token_for(user)), origin=origin).accepted is False


# -- tickets ------------------------------------------------------------------------------------------


def ticket(value: str) -> tuple[str, str]:
    return "multibot", f"ticket.{value}"


def test_a_ticket_opens_one_socket_and_only_once(user):
    issued = auth.ticket_store(user=user)

    first = handshake(*ticket(issued))
    again = handshake(*ticket(issued))

    assert first.accepted is True and first.detail == "multibot"
    assert again.accepted is False


def test_a_ticket_in_the_url_opens_nothing(user):
    # An access log keeps the query string: a credential there is refused, and left unspent.
    issued = auth.ticket_store(user=user)

    assert handshake(path=f"/ws?ticket={issued}").accepted is False
    assert handshake(*ticket(issued)).accepted is True


def test_a_ticket_is_kept_only_as_a_digest_with_the_ticket_lifetime(user):
    ticket = auth.ticket_store(user=user)

    keys = list(redis_client().scan_iter(match="*ws-ticket*"))
    assert len(keys) == 1 and ticket not in keys[0]
    assert 0 < redis_client().ttl(keys[0]) <= settings.REALTIME["ticket_seconds"] == 30


@override_settings(REALTIME={**settings.REALTIME, "ticket_seconds": 1})
def test_an_expired_ticket_is_refused(user):
    issued = auth.ticket_store(user=user)
    time.sleep(1.5)

    assert handshake(*ticket(issued)).accepted is False


def test_an_unknown_ticket_is_refused():
    assert handshake(*ticket("nothing-like-it")).accepted is False


def test_a_ticket_dies_with_the_accounts_sessions(user):
    issued = auth.ticket_store(user=user)
    account_sessions.revoke_all_sessions(user.pk)

    assert handshake(*ticket(issued)).accepted is False


# -- POST /api/v1/ws/ticket -----------------------------------------------------------------------------


def test_the_ticket_api_issues_a_working_ticket_and_audits_it(user_api, user):
    from audit.models import AuditLog

    response = user_api.post("/api/v1/ws/ticket")

    assert response.status_code == 201
    assert response.json()["expires_in"] == 30
    issued = response.json()["ticket"]
    row = AuditLog.objects.get(action="ws_ticket")
    assert (row.user_id, row.status, row.resource) == (user.pk, "success", f"user:{user.pk}")
    assert issued not in str(row.details)
    assert handshake(*ticket(issued)).accepted is True


def test_the_ticket_api_needs_authentication(api):
    assert api.post("/api/v1/ws/ticket").status_code == 401


# -- a session ended while the socket is open -----------------------------------------------------------


@override_settings(REALTIME={**settings.REALTIME, "ping_seconds": 1})
def test_an_open_socket_is_closed_when_the_accounts_sessions_end(user):
    from asgiref.sync import sync_to_async

    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        await sync_to_async(account_sessions.revoke_all_sessions)(user.pk)
        while True:
            output = await socket.communicator.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                return output

    assert run(scenario)["code"] == 4003


def _closed_with(token: str, change: object) -> int:
    from asgiref.sync import sync_to_async

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        await sync_to_async(change)()
        while True:
            output = await socket.communicator.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                return output["code"]

    return run(scenario)


@override_settings(REALTIME={**settings.REALTIME, "ping_seconds": 1})
def test_a_superuser_demoted_while_connected_loses_the_socket_that_saw_the_whole_fleet(superuser):
    # The flag chose the socket's groups (every owner's events): it may not outlive the flag.
    def demote():
        superuser.is_superuser = False
        superuser.save(update_fields=["is_superuser"])

    assert _closed_with(factories.access_token_for(superuser), demote) == 4003


@override_settings(REALTIME={**settings.REALTIME, "ping_seconds": 30})
def test_a_socket_ends_when_its_access_token_expires(user):
    # given: a token with two seconds to live, and pings far apart
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=2))

    # then: the socket is closed at the token's expiry, not at the next ping
    started = time.monotonic()
    assert _closed_with(str(token), lambda: None) == 4003
    assert time.monotonic() - started < 10
