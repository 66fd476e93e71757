"""/api/v1/bots/{id}/ft/...: a real freqtrade dry-run bot on the replay exchange, reached through Multibot.

One bot process serves the module (tests/bots/conftest.py); each test's own bot row (owned by that
test's user) carries the port and credentials of that process, as the gateway would have left it.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from freqtrade_client import FtRestClient

from audit.models import AuditLog
from bots import workspace
from bots.ftclient import FreqtradeApiError, FreqtradeClient, client_for
from bots.models import Bot
from strategies.library import install_builtin_strategies
from tests.factories import PASSWORD, make_bot
from tests.support.processes import database_url, free_port, server_env, uvicorn_server
from tests.support.replay import freqtrade_bot
from tests.support.running_bot import BotProcess, settings_for

# embedded_only: an HTTP relay to a bot; its ownership and audit queries are plain ORM, tested on both elsewhere.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


@pytest.fixture
def bot(user: Any, bot_process: BotProcess) -> Bot:
    """``user``'s running bot."""
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.RUNNING, **BotProcess.credentials_of(bot_process))
    bot.refresh_from_db()
    return bot


@pytest.fixture
def direct(bot: Bot) -> Iterator[FreqtradeClient]:
    """The bot's own API, called the way Multibot calls it."""
    with client_for(bot) as client:
        yield client


def ft(bot: Bot | int, path: str) -> str:
    return f"/api/v1/bots/{bot if isinstance(bot, int) else bot.pk}/ft/{path}"


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def same_as_direct(through: Callable[[], Any], direct: Callable[[], Any]) -> None:
    """The answer through Multibot is the bot's own, read just before or just after (prices move)."""
    before = direct()
    seen = through()
    after = direct()
    assert seen in (before, after), (seen, before)


# -- the client ------------------------------------------------------------------------------------


def test_the_client_reads_the_bots_api(direct):
    assert direct.ping() == {"status": "pong"}
    assert direct.show_config()["dry_run"] is True
    assert isinstance(direct.status(), list)
    assert {"trades", "trades_count", "offset", "total_trades"} <= set(direct.trades(offset=0, limit=10))
    assert {"profit_all_coin", "trade_count"} <= set(direct.profit())


def test_client_errors_carry_the_status_and_never_the_password(bot, bot_process):
    wrong = FreqtradeClient(f"http://127.0.0.1:{bot.api_port}", bot.api_username, "not-" + bot_process.api_password)
    with wrong, pytest.raises(FreqtradeApiError) as refused:
        wrong.profit()
    assert refused.value.status_code == 401
    nobody = FreqtradeClient(f"http://127.0.0.1:{free_port()}", bot.api_username, bot_process.api_password)
    with nobody, pytest.raises(FreqtradeApiError) as unreachable:
        nobody.ping()
    assert unreachable.value.status_code is None and not unreachable.value.timed_out
    for text in (str(refused.value), str(unreachable.value), repr(nobody), repr(wrong)):
        assert bot_process.api_password not in text


# -- through Multibot --------------------------------------------------------------------------------


@pytest.mark.usefixtures("committed_db")
def test_freqtrade_client_through_a_real_server_gets_the_bots_profit(user, bot, other_user, direct):
    # given: a real server on the test database
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    with uvicorn_server(env) as base:
        # when: freqtrade's own client, pointed at the pass-through with Multibot credentials
        ours = FtRestClient(f"{base}/api/v1/bots/{bot.pk}/ft", user.username, PASSWORD)
        theirs = FtRestClient(f"{base}/api/v1/bots/{bot.pk}/ft", other_user.username, PASSWORD)
        # then
        same_as_direct(ours.profit, direct.profit)
        assert ours.version() == direct.request("GET", "api/v1/version").json()
        assert theirs.profit() == {"detail": "Bot not found"}
        raw = httpx.get(f"{base}{ft(bot, 'api/v1/count')}", auth=(user.username, PASSWORD), timeout=10)
    assert raw.status_code == 200 and raw.json()["current"] == len(direct.status())
    assert "X-RateLimit-Limit" in raw.headers


def test_a_jwt_reaches_the_bots_status(user_api, bot, direct):
    response = user_api.get(ft(bot, "api/v1/status"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    same_as_direct(lambda: user_api.get(ft(bot, "api/v1/status")).json(), direct.status)


def test_query_strings_and_bodies_reach_the_bot(user_api, bot, direct):
    # when: a pair blacklisted with a JSON body, then removed with a query string
    added = user_api.post(ft(bot, "api/v1/blacklist"), {"blacklist": ["ETH/USDT"]}, format="json")
    listed = direct.request("GET", "api/v1/blacklist").json()["blacklist"]
    removed = user_api.delete(ft(bot, "api/v1/blacklist") + "?pairs_to_delete=ETH/USDT")
    trades = user_api.get(ft(bot, "api/v1/trades") + "?limit=3&offset=0")

    # then
    assert added.status_code == 200 and "ETH/USDT" in added.json()["blacklist"]
    assert "ETH/USDT" in listed
    assert removed.status_code == 200 and "ETH/USDT" not in removed.json()["blacklist"]
    assert trades.status_code == 200 and trades.json()["offset"] == 0


def test_a_mutating_call_is_audited_without_the_bots_credentials(user, user_api, bot, bot_process):
    user_api.post(ft(bot, "api/v1/blacklist"), {"blacklist": ["ETH/USDT"]}, format="json")
    user_api.delete(ft(bot, "api/v1/blacklist") + "?pairs_to_delete=ETH/USDT")

    rows = AuditLog.objects.filter(action="bot_ft_passthrough").order_by("id")
    assert [(row.user, row.resource, row.status, row.details["method"]) for row in rows] == [
        (user, f"bot:{bot.pk}", AuditLog.Status.SUCCESS, "POST"),
        (user, f"bot:{bot.pk}", AuditLog.Status.SUCCESS, "DELETE"),
    ]
    assert rows[0].details["ft_path"] == "api/v1/blacklist" and rows[0].details["status_code"] == 200
    assert not any(secret in json.dumps(row.details) for row in rows for secret in bot_process.secrets)


def test_the_bots_errors_come_back_with_their_status(user_api, bot):
    missing = user_api.get(ft(bot, "api/v1/trade/999999"))
    invalid = user_api.post(ft(bot, "api/v1/blacklist"), {"blacklist": 3}, format="json")

    assert missing.status_code == 404 and missing.json()["detail"]
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "blacklist"]


def test_the_bots_credentials_never_come_back(user_api, bot, bot_process):
    # given: every kind of answer, and one where freqtrade echoes its input (a 422 quoting the body)
    answers = [
        user_api.get(ft(bot, path))
        for path in ("api/v1/show_config", "api/v1/status", "api/v1/profit", "api/v1/version", "api/v1/logs",
                     "api/v1/whitelist", "api/v1/health", "api/v1/sysinfo", "api/v1/nothing-here")
    ]  # fmt: skip
    echoed = user_api.post(ft(bot, "api/v1/blacklist"), {"blacklist": bot_process.api_password}, format="json")
    answers.append(echoed)

    # then
    assert [answer.status_code for answer in answers[:8]] == [200] * 8
    assert echoed.status_code == 422 and "********" in echoed.content.decode()
    for answer in answers:
        text = answer.content.decode() + json.dumps(dict(answer.items()))
        for secret in bot_process.secrets:
            assert secret not in text, answer.request["PATH_INFO"]
        assert not answer.has_header("WWW-Authenticate") and not answer.has_header("Set-Cookie")
    shown = answers[0].json()
    assert shown["dry_run"] is True and shown["stake_currency"] == "USDT"
    # freqtrade's show_config names the exchange and leaves out the api_server section: verified here.
    assert "api_server" not in shown and shown["exchange"] == "binance"


def test_another_user_gets_404_with_a_jwt_and_with_basic(other_user, other_api, api, bot):
    for client, extra in ((other_api, {}), (api, basic(other_user.username, PASSWORD))):
        response = client.get(ft(bot, "api/v1/profit"), **extra)
        assert response.status_code == 404
        assert response.json() == {"detail": "Bot not found"}
    assert other_api.get(ft(999_999, "api/v1/profit")).json() == {"detail": "Bot not found"}


def test_a_superuser_reaches_any_bot(admin_api, bot):
    assert admin_api.get(ft(bot, "api/v1/count")).status_code == 200


def test_a_wrong_password_or_no_credentials_is_401(api, user, bot):
    wrong = api.get(ft(bot, "api/v1/profit"), **basic(user.username, "wrong-password"))
    nothing = api.get(ft(bot, "api/v1/profit"))
    user.is_active = False
    user.save(update_fields=["is_active"])
    inactive = api.get(ft(bot, "api/v1/profit"), **basic(user.username, PASSWORD))

    for response in (wrong, nothing, inactive):
        assert response.status_code == 401
        assert response.json()["detail"]
    failed = AuditLog.objects.filter(action="login", status=AuditLog.Status.FAILURE).order_by("id")
    assert [(row.details["reason"], row.details["via"]) for row in failed] == [
        ("bad_credentials", "http_basic"),
        ("inactive_user", "http_basic"),
    ]


def test_basic_guessing_locks_the_account_like_login_does(api, user, bot, settings):
    settings.LOGIN_LOCKOUT = {**settings.LOGIN_LOCKOUT, "max_failures": 3}
    guesses = [api.get(ft(bot, "api/v1/profit"), **basic(user.username, f"guess{n}")) for n in range(3)]

    locked = api.get(ft(bot, "api/v1/profit"), **basic(user.username, PASSWORD))

    assert [guess.status_code for guess in guesses] == [401, 401, 401]
    assert locked.status_code == 429 and "Retry-After" in locked


def test_only_freqtrades_api_paths_are_forwarded(user_api, bot):
    for path in ("docs", "api/v2/ping", "api/v1/../../docs", "api/v1/%2e%2e/%2e%2e/openapi.json", "ui/favicon.ico"):
        response = user_api.get(ft(bot, path))
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Only freqtrade API paths (api/v1/...) are forwarded"}


def test_freqtrades_token_endpoints_are_never_forwarded(user_api, api, user, bot, bot_process):
    # given: the bot itself would hand out tokens to its own credentials
    direct = httpx.post(f"http://127.0.0.1:{bot.api_port}/api/v1/token/login",
                        auth=(bot_process.api_username, bot_process.api_password), timeout=5)  # fmt: skip
    assert direct.status_code == 200 and "access_token" in direct.json()

    # when: their paths spelled otherwise than the two Multibot answers itself (tests/bots/test_frequi_passthrough.py)
    answers = [
        user_api.post(ft(bot, "api/v1/token/refresh/")),
        api.post(ft(bot, "api/v1/token/login/"), **basic(user.username, PASSWORD)),
        user_api.post(ft(bot, "api/v1//token/login")),
    ]

    # then
    for response in answers:
        assert response.status_code == 403
        assert "token endpoints are not forwarded" in response.json()["detail"]
        assert "access_token" not in response.content.decode()


def test_a_bot_not_running_is_503_without_a_call(user_api, bot):
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.STOPPED)

    response = user_api.get(ft(bot, "api/v1/ping"))

    assert response.status_code == 503
    assert response.json() == {"detail": f"Bot {bot.name} is not reachable; is it running?"}


def test_an_unresponsive_bot_is_503_at_once_without_a_call(user_api, bot):
    # given: the gateway found its API silent (this one would answer: no call is made to find out)
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.UNRESPONSIVE)

    response = user_api.get(ft(bot, "api/v1/ping"))

    assert response.status_code == 503
    assert response.json()["detail"].startswith(f"Bot {bot.name} is unresponsive: its API has stopped answering")


def test_a_bot_on_another_machine_is_503_and_nothing_on_this_machine_is_sent_its_credentials(user_api, bot):
    # given: the record places it on beta, whose 127.0.0.1 is not this machine's (the live bot here would answer)
    host = Bot.objects.values_list("host", flat=True).get(pk=bot.pk)
    Bot.objects.filter(pk=bot.pk).update(host="beta")
    try:
        response = user_api.get(ft(bot, "api/v1/ping"))
    finally:
        Bot.objects.filter(pk=bot.pk).update(host=host)

    assert response.status_code == 503
    detail = f"Bot {bot.name} runs on host beta: its API is reachable on that machine only."
    assert response.json() == {"detail": detail}


def test_a_bot_whose_process_ended_is_503(settings, tmp_path, replay_url, home, user, user_api):
    # given: a bot of its own, started from its workspace
    for name, value in settings_for(tmp_path, replay_url, market_home=home).items():
        setattr(settings, name, value)
    install_builtin_strategies()
    bot = make_bot(owner=user, timeframe="5m")
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.RUNNING)
    with freqtrade_bot(workspace.prepare(bot), bot.api_port) as process, client_for(bot) as client:
        assert user_api.get(ft(bot, "api/v1/ping")).json() == {"status": "pong"}
        # the gateway's emergency steps, by the client, before the process goes
        assert "status" in client.stopentry()
        assert "result" in client.forceexit("all")
        assert "status" in client.stop()
        process.terminate()
        process.wait(30)

        # when
        response = user_api.get(ft(bot, "api/v1/profit"))
        with pytest.raises(FreqtradeApiError) as gone:
            client.ping()

    # then
    assert response.status_code == 503
    assert response.json() == {"detail": f"Bot {bot.name} is not reachable; is it running?"}
    assert gone.value.status_code is None


def test_a_bot_refusing_multibots_credentials_is_a_502_not_the_callers_401(user_api, bot, bot_process):
    Bot.objects.filter(pk=bot.pk).update(api_password="renewed-" + bot_process.api_password)

    response = user_api.get(ft(bot, "api/v1/profit"))

    assert response.status_code == 502
    assert response.json() == {
        "detail": f"Bot {bot.name} refused Multibot's credentials; restart it to renew its config"
    }


def test_a_bot_that_accepts_but_never_answers_is_a_504(user_api, bot, monkeypatch):
    # given: something on the bot's port that takes the connection and says nothing
    monkeypatch.setattr("bots.passthrough.TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        Bot.objects.filter(pk=bot.pk).update(api_port=silent.getsockname()[1])

        response = user_api.get(ft(bot, "api/v1/profit"))

    assert response.status_code == 504
    assert response.json() == {"detail": f"Bot {bot.name} did not answer within 0.5 seconds"}


def test_an_accept_header_multibot_cannot_render_still_reaches_the_bot(user_api, bot):
    response = user_api.get(ft(bot, "api/v1/ping"), HTTP_ACCEPT="text/plain")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
