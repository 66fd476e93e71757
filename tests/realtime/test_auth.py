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


def test_a_ticket_opens_one_socket_by_query_or_subprotocol_and_only_once(user):
    by_query, by_protocol = auth.ticket_store(user=user), auth.ticket_store(user=user)

    first = handshake(path=f"/ws?ticket={by_query}")
    again = handshake(path=f"/ws?ticket={by_query}")
    protocol = handshake("multibot", f"ticket.{by_protocol}")
    protocol_again = handshake("multibot", f"ticket.{by_protocol}")

    assert first.accepted is True and first.detail is None  # no subprotocol offered, none chosen
    assert again.accepted is False
    assert protocol.accepted is True and protocol.detail == "multibot"
    assert protocol_again.accepted is False


def test_a_ticket_is_kept_only_as_a_digest_with_the_ticket_lifetime(user):
    ticket = auth.ticket_store(user=user)

    keys = list(redis_client().scan_iter(match="*ws-ticket*"))
    assert len(keys) == 1 and ticket not in keys[0]
    assert 0 < redis_client().ttl(keys[0]) <= settings.REALTIME["ticket_seconds"] == 30


@override_settings(REALTIME={**settings.REALTIME, "ticket_seconds": 1})
def test_an_expired_ticket_is_refused(user):
    ticket = auth.ticket_store(user=user)
    time.sleep(1.5)

    assert handshake(path=f"/ws?ticket={ticket}").accepted is False


def test_an_unknown_ticket_is_refused():
    assert handshake(path="/ws?ticket=nothing-like-it").accepted is False


def test_a_ticket_dies_with_the_accounts_sessions(user):
    ticket = auth.ticket_store(user=user)
    account_sessions.revoke_all_sessions(user.pk)

    assert handshake(path=f"/ws?ticket={ticket}").accepted is False


# -- POST /api/v1/ws/ticket -----------------------------------------------------------------------------


def test_the_ticket_api_issues_a_working_ticket_and_audits_it(user_api, user):
    from audit.models import AuditLog

    response = user_api.post("/api/v1/ws/ticket")

    assert response.status_code == 201
    assert response.json()["expires_in"] == 30
    ticket = response.json()["ticket"]
    row = AuditLog.objects.get(action="ws_ticket")
    assert (row.user_id, row.status, row.resource) == (user.pk, "success", f"user:{user.pk}")
    assert ticket not in str(row.details)
    assert handshake(path=f"/ws?ticket={ticket}").accepted is True


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
