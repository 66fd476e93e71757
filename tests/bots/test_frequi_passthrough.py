"""FreqUI through Multibot: a bot's freqtrade login, calls, refresh and message WebSocket, by the pass-through.

FreqUI is given a bot's URL, ``<server>/api/v1/bots/<id>/ft``, and a Multibot username and password.
Its requests are made here as its browser sends them (a page of another origin: preflights, Origin,
axios' Accept): ``POST .../api/v1/token/login`` with HTTP Basic and a ``{}`` body, Bearer calls,
``POST .../api/v1/token/refresh`` with the refresh token as Bearer, and the message WebSocket with
``?token=`` where FreqUI subscribes and asks for the whitelist. One real freqtrade bot on the replay
exchange serves the module (tests/bots/conftest.py), one real server (uvicorn) the end-to-end tests.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from audit.models import AuditLog
from bots.ftauth import BotAccessToken
from bots.ftclient import client_for
from bots.models import Bot
from multibot.asgi import application
from multibot.services.auth import revoke_all_sessions
from tests import factories
from tests.factories import PASSWORD, make_bot
from tests.support.processes import database_url, server_env, uvicorn_server
from tests.support.running_bot import BotProcess
from tests.support.websocket import WebsocketCommunicator

# Every test on committed data: pytest-django runs transactional tests after all others, and a module
# of both kinds would start its bot twice in a full run.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]

FREQUI = "http://frequi.example:3000"
# What FreqUI's axios sends from a page of FREQUI.
BROWSER = {"Origin": FREQUI, "Accept": "application/json, text/plain, */*"}
# FreqUI's subscription when its socket opens (freqtrade's RPCMessageType values), then its whitelist request.
SUBSCRIBE = {"type": "subscribe", "data": ["whitelist", "entry_fill", "exit_fill", "entry_cancel", "exit_cancel",
                                           "new_candle"]}  # fmt: skip
WHITELIST = {"type": "whitelist", "data": ""}


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[str]:
    """A real server on the test database, FREQUI allowed, re-checking open sockets every second."""
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(),
                     MULTIBOT_FREQUI_ORIGINS=FREQUI, MULTIBOT_WS_PING_SECONDS="1")  # fmt: skip
    with uvicorn_server(env) as base:
        yield base


@pytest.fixture
def bot(user: Any, bot_process: BotProcess) -> Bot:
    """``user``'s running bot."""
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.RUNNING, **BotProcess.credentials_of(bot_process))
    bot.refresh_from_db()
    return bot


def ft(bot: Bot | int, path: str) -> str:
    return f"/api/v1/bots/{bot if isinstance(bot, int) else bot.pk}/ft/{path}"


def basic(username: str, password: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def socket_url(base: str, bot: Bot | int, token: str) -> str:
    return base.replace("http://", "ws://") + ft(bot, "api/v1/message/ws") + f"?token={token}"


def frames_until(socket: ClientConnection, kind: str, seen: list[str]) -> dict[str, Any]:
    """The bot's frames up to the first of ``kind`` (a candle may close meanwhile), each kept in ``seen``."""
    for _ in range(20):
        seen.append(str(socket.recv(timeout=15)))
        frame = json.loads(seen[-1])
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame in {seen}")


def closed_code(socket: ClientConnection) -> int:
    """The code the server closed ``socket`` with, reading (and dropping) what comes before it."""
    for _ in range(100):
        try:
            socket.recv(timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else -1  # -1: no close frame came
    raise AssertionError("the server did not close the socket")


# -- FreqUI's sequence, end to end --------------------------------------------------------------------------


def test_frequi_logs_in_calls_refreshes_and_hears_the_bots_socket_through_multibot(user, bot, bot_process, server):
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=server, headers=BROWSER, timeout=15) as browser:

        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            answers.append(browser.request(method, ft(bot, path), **kwargs))
            return answers[-1]

        # when: the login FreqUI sends, after the browser's preflight of it
        asked = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
        preflight = call("OPTIONS", "api/v1/token/login", headers=asked)
        login = call("POST", "api/v1/token/login", json={}, auth=(user.username, PASSWORD))
        tokens = login.json()
        # its first calls, its refresh, and a call with the renewed token
        ping = call("GET", "api/v1/ping", headers=bearer(tokens["access_token"]))
        config = call("GET", "api/v1/show_config", headers=bearer(tokens["access_token"]))
        status = call("GET", "api/v1/status", headers=bearer(tokens["access_token"]))
        refreshed = call("POST", "api/v1/token/refresh", json={}, headers=bearer(tokens["refresh_token"]))
        access = refreshed.json()["access_token"]
        count = call("GET", "api/v1/count", headers=bearer(access))
    # and its socket: subscribe, then ask for the whitelist, as FreqUI does when it connects
    frames: list[str] = []
    with connect(socket_url(server, bot, access), origin=FREQUI, open_timeout=10) as socket:
        socket.send(json.dumps(SUBSCRIBE))
        socket.send(json.dumps(WHITELIST))
        whitelist = frames_until(socket, "whitelist", frames)
        handshake_headers = dict(socket.response.headers.raw_items())

    # then: freqtrade's answers and shapes, readable by a page of FREQUI
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == FREQUI
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert {"authorization", "content-type"} <= set(preflight.headers["Access-Control-Allow-Headers"].split(", "))
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert login.status_code == 200 and set(tokens) == {"access_token", "refresh_token"}
    assert login.headers["Access-Control-Allow-Origin"] == FREQUI
    assert ping.json() == {"status": "pong"}
    assert config.status_code == 200 and config.json()["dry_run"] is True
    assert status.status_code == 200 and isinstance(status.json(), list)
    assert refreshed.status_code == 200 and set(refreshed.json()) == {"access_token"}
    assert count.status_code == 200 and count.json()["current"] == len(status.json())
    # a real frame of the bot's own socket
    with client_for(bot) as direct:
        assert whitelist == {"type": "whitelist", "data": direct.request("GET", "api/v1/whitelist").json()["whitelist"]}
    # the tokens are Multibot's: not signed with the bot's key, refused by the bot itself
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(access, bot_process.jwt_secret_key, algorithms=["HS256"])
    direct_call = httpx.get(f"http://127.0.0.1:{bot.api_port}/api/v1/status", headers=bearer(access), timeout=5)
    assert direct_call.status_code == 401
    # the bot's credentials never left the server
    texts = [answer.text + json.dumps(dict(answer.headers)) for answer in answers]
    for text in [*texts, *frames, json.dumps(handshake_headers)]:
        for secret in bot_process.secrets:
            assert secret not in text
    # audited as a login to this bot, and its refresh
    rows = AuditLog.objects.filter(resource=f"bot:{bot.pk}", action__in=["login", "token_refresh"]).order_by("id")
    assert [(row.action, row.status, row.user_id, row.details["via"]) for row in rows] == [
        ("login", "success", user.pk, "freqtrade_token"),
        ("token_refresh", "success", user.pk, "freqtrade_token"),
    ]


def test_the_same_sequence_on_another_users_bot_is_refused(user, other_user, bot, bot_process, server):
    # given: another user's bot (not running: nothing must reach a bot), and a stopped bot of the user's own
    theirs = make_bot(owner=other_user)
    stopped = make_bot(owner=user)
    with httpx.Client(base_url=server, headers=BROWSER, timeout=15) as browser:
        tokens = browser.post(ft(bot, "api/v1/token/login"), json={}, auth=(user.username, PASSWORD)).json()

        # when
        login = browser.post(ft(theirs, "api/v1/token/login"), json={}, auth=(user.username, PASSWORD))
        wrong = browser.post(ft(bot, "api/v1/token/login"), json={}, auth=(user.username, "not-" + PASSWORD))
        the_bots_own = browser.post(ft(bot, "api/v1/token/login"), json={},
                                    auth=(bot_process.api_username, bot_process.api_password))  # fmt: skip
        nothing = browser.post(ft(bot, "api/v1/token/login"), json={})
        borrowed = [browser.get(ft(other, "api/v1/ping"), headers=bearer(tokens["access_token"]))
                    for other in (stopped, theirs)]  # fmt: skip
        borrowed_refresh = [browser.post(ft(other, "api/v1/token/refresh"), headers=bearer(tokens["refresh_token"]))
                            for other in (stopped, theirs)]  # fmt: skip
        on_multibot = browser.get("/api/v1/bots/", headers=bearer(tokens["access_token"]))
        as_multibot_refresh = browser.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    sockets = {}
    attempts = {"their bot, my bot's token": (theirs, tokens["access_token"]),
                "their bot, my Multibot token": (theirs, factories.access_token_for(user)),
                "my other bot, this bot's token": (stopped, tokens["access_token"]),
                "my bot, no token": (bot, "not-a-token")}  # fmt: skip
    for name, (target, token) in attempts.items():
        with pytest.raises(InvalidStatus) as refused:
            connect(socket_url(server, target, token), origin=FREQUI, open_timeout=10)
        sockets[name] = refused.value.response.status_code
    with pytest.raises(InvalidStatus) as unknown:
        connect(socket_url(server, 999_999, tokens["access_token"]), open_timeout=10)
    with connect(socket_url(server, stopped, factories.access_token_for(user)), open_timeout=10) as socket:
        not_running = closed_code(socket)

    # then: freqtrade's 401s, Multibot's 404 for a bot not the user's, and no token working elsewhere
    assert (login.status_code, login.json()) == (404, {"detail": "Bot not found"})
    for refusal in (wrong, the_bots_own):
        assert (refusal.status_code, refusal.json()) == (401, {"detail": "Incorrect username or password"})
        assert "WWW-Authenticate" not in refusal.headers  # as freqtrade: no browser password dialog over FreqUI
    assert nothing.status_code == 401 and nothing.headers["WWW-Authenticate"].startswith("Basic")
    for answer in [*borrowed, *borrowed_refresh]:
        assert (answer.status_code, answer.json()) == (401, {"detail": "This token is for another bot"})
    assert on_multibot.status_code == 401 and as_multibot_refresh.status_code == 401
    # a refused socket: closed with 1008 before the handshake completes, which a server answers with a 403
    assert set(sockets.values()) == {403}, sockets
    assert unknown.value.response.status_code == 403
    assert not_running == 1013
    for answer in (login, wrong, borrowed[1]):
        assert answer.headers["Access-Control-Allow-Origin"] == FREQUI  # FreqUI can read why
    failed = AuditLog.objects.filter(action="login", status=AuditLog.Status.FAILURE).order_by("id")
    assert [(row.details.get("via"), row.details.get("reason"), row.resource) for row in failed] == [
        (None, None, f"bot:{theirs.pk}"),  # the 404, recorded by the audit middleware
        ("freqtrade_token", "bad_credentials", ""),
        ("freqtrade_token", "bad_credentials", ""),
    ]


def test_an_api_client_opens_the_socket_with_its_multibot_token_until_the_bot_is_not_its_any_more(
    user, other_user, bot, server
):
    frames: list[str] = []
    with connect(socket_url(server, bot, factories.access_token_for(user)), open_timeout=10) as socket:
        socket.send(json.dumps(WHITELIST))
        assert frames_until(socket, "whitelist", frames)["data"]

        # when: the bot is given to someone else
        Bot.objects.filter(pk=bot.pk).update(owner=other_user)

        # then: the socket is closed within a check (a second on this server)
        assert closed_code(socket) == 4003


# -- the bot's tokens, in process -----------------------------------------------------------------------------


def _login(api: Any, bot: Bot, user: Any) -> dict[str, str]:
    response = api.post(ft(bot, "api/v1/token/login"), {}, format="json", **basic(user.username, PASSWORD))
    assert response.status_code == 200, response.content
    return response.json()


def _with(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_bots_tokens_end_with_the_users_hold_on_the_bot_and_with_the_account(api, user, other_user, bot):
    tokens = _login(api, bot, user)

    def answers() -> tuple[int, int]:
        return (api.get(ft(bot, "api/v1/count"), **_with(tokens["access_token"])).status_code,
                api.post(ft(bot, "api/v1/token/refresh"), **_with(tokens["refresh_token"])).status_code)  # fmt: skip

    working = answers()
    Bot.objects.filter(pk=bot.pk).update(owner=other_user)
    given_away = answers()
    Bot.objects.filter(pk=bot.pk).update(owner=user)
    given_back = answers()
    revoke_all_sessions(user.pk)
    sessions_ended = answers()
    tokens = _login(api, bot, user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    deactivated = answers()

    assert working == given_back == (200, 200)
    assert given_away == sessions_ended == deactivated == (401, 401)


def test_an_expired_bot_token_or_a_refresh_token_used_as_access_is_refused(api, user, bot):
    tokens = _login(api, bot, user)
    expired = BotAccessToken(tokens["access_token"])
    expired.set_exp(lifetime=-timedelta(seconds=1))

    for token in (str(expired), tokens["refresh_token"]):
        assert api.get(ft(bot, "api/v1/count"), **_with(token)).status_code == 401
    assert api.post(ft(bot, "api/v1/token/refresh"), **_with(tokens["access_token"])).status_code == 401


def test_login_guessing_locks_the_account_like_multibots_login(api, user, bot, settings):
    settings.LOGIN_LOCKOUT = {**settings.LOGIN_LOCKOUT, "max_failures": 3}
    guesses = [api.post(ft(bot, "api/v1/token/login"), **basic(user.username, f"guess{n}")) for n in range(3)]

    locked = api.post(ft(bot, "api/v1/token/login"), **basic(user.username, PASSWORD))

    assert [guess.status_code for guess in guesses] == [401, 401, 401]
    assert locked.status_code == 429 and "Retry-After" in locked
    # counted in the login budget per address, not the caller's general one
    assert guesses[0]["X-RateLimit-Limit"] == settings.RATE_LIMITS["login"].partition("/")[0]


# -- CORS and Origin: FreqUI's origins, on the pass-through only -------------------------------------------------


def _preflight(api: Any, path: str, origin: str) -> Any:
    return api.options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                       HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")  # fmt: skip


def test_only_frequis_origins_get_cors_headers_and_only_on_the_pass_through(api, user_api, bot, settings):
    settings.CORS_ALLOWED_ORIGINS = settings.FREQUI_ORIGINS = [FREQUI]

    allowed = _preflight(api, ft(bot, "api/v1/status"), FREQUI)
    foreign = _preflight(api, ft(bot, "api/v1/status"), "http://evil.example")
    elsewhere = _preflight(api, "/api/v1/bots/", FREQUI)
    call = user_api.get(ft(bot, "api/v1/count"), HTTP_ORIGIN=FREQUI)

    assert allowed.status_code == 200 and allowed["Access-Control-Allow-Origin"] == FREQUI
    assert allowed["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert set(allowed["Access-Control-Allow-Methods"].split(", ")) == {"DELETE", "GET", "OPTIONS", "PATCH", "POST",
                                                                         "PUT"}  # fmt: skip
    for refused in (foreign, elsewhere):
        assert not [name for name in refused.headers if name.lower().startswith("access-control-")]
    assert call.status_code == 200 and call["Access-Control-Allow-Origin"] == FREQUI


def _handshake(path: str, origin: str, protocols: list[str] | None = None) -> tuple[bool, Any]:
    import asyncio

    async def scenario() -> tuple[bool, Any]:
        communicator = WebsocketCommunicator(application, path, headers=[(b"origin", origin.encode())],
                                             subprotocols=protocols)  # fmt: skip
        connected, detail = await communicator.connect(timeout=10)
        if connected:
            await communicator.disconnect()
        return connected, detail

    return asyncio.run(scenario())


def test_the_sockets_origin_check_lets_frequis_pages_reach_the_relay_and_only_it(user, bot, settings):
    settings.FREQUI_ORIGINS = [FREQUI]
    relay = ft(bot, "api/v1/message/ws") + "?token=not-a-token"
    token = factories.access_token_for(user)

    # a FreqUI page reaches the relay, which refuses the token with freqtrade's 1008; a foreign page is denied before it
    assert _handshake(relay, FREQUI) == (False, 1008)
    assert _handshake(relay, "http://evil.example") == (False, 1000)
    # /ws stays for Multibot's own pages
    assert _handshake("/ws", FREQUI, ["multibot", f"bearer.{token}"]) == (False, 1000)
    assert _handshake("/ws", "http://127.0.0.1:8002", ["multibot", f"bearer.{token}"]) == (True, "multibot")


def test_a_sockets_token_is_masked_in_the_servers_log(caplog):
    # given: the line uvicorn logs for each handshake, with its path and query
    path = "/api/v1/bots/7/ft/api/v1/message/ws?token=eyJhbGciOi.the-token.signature&other=1"

    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:50000", path)

    assert "the-token" not in caplog.text
    assert '"WebSocket /api/v1/bots/7/ft/api/v1/message/ws?token=********&other=1" [accepted]' in caplog.text
