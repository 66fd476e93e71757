"""The client against the real running system: sessions, errors, bots, jobs, data, reads, both clients, events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import AuditLog
from tests.client.conftest import System
from tests.factories import PASSWORD, make_user
from tests.jobs.conftest import TUNABLE, timerange
from tests.support.processes import free_port, uvicorn_server

from multibot_client import (  # isort: skip - importable once tests/client/conftest.py put client/ on the path
    AsyncClient, AuthenticationError, Client, Conflict, Event, NotFound, PermissionDenied, RateLimited,
    ServerUnreachable, Tokens, ValidationError,
)  # fmt: skip

# The client and its command line against the running system: the server behind them is tested on both databases.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only, pytest.mark.django_db(transaction=True)]

EVENT_WAIT = 30


@pytest.fixture
def admin(system: System, committed_db: None) -> Iterator[Client]:
    superuser = make_user(is_superuser=True)
    with Client(system.url) as session:
        session.login(superuser.username, PASSWORD)
        yield session


def _next_event(events: Any, matches: Any, what: str, within: float = EVENT_WAIT) -> Event:
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no event: {what}")
        event = events.next(timeout=left)
        if matches(event):
            return event


# -- the session -------------------------------------------------------------------------------------
def test_a_login_is_refreshed_then_logged_out_and_its_refresh_token_is_dead(system, account):
    with Client(system.url) as client:
        # when: logged in
        answer = client.login(account.username, PASSWORD)
        # then: the user, and tokens whose expiry the client knows
        assert (answer["user"]["username"], answer["token_type"]) == (account.username, "bearer")
        first = client.tokens
        assert first is not None and first.expires_at is not None and not first.expired()
        assert [bot["name"] for bot in client.bots_list()] == []

        # when: refreshed by hand: both tokens are new, and they work
        second = client.refresh()
        assert (second.access_token, second.refresh_token) != (first.access_token, first.refresh_token)
        assert client.monitoring_status()["bot_statistics"]["total_bots"] == 0

        # when: logged out: the client forgets, the server revoked the refresh token
        client.logout()
        assert client.tokens is None
    with Client(system.url, access_token=second.access_token, refresh_token=second.refresh_token) as stale:
        with pytest.raises(AuthenticationError) as revoked:
            stale.refresh()
    assert (revoked.value.status_code, revoked.value.detail) == (401, "Refresh token has been revoked")


def test_refused_logins_carry_the_servers_detail_and_a_lockout_its_retry_after(system, account):
    with Client(system.url) as client:
        with pytest.raises(AuthenticationError) as wrong:
            client.login(account.username, "not-the-password")
        assert (wrong.value.status_code, wrong.value.detail) == (401, "Incorrect username or password")
        for _ in range(4):  # five failures from one address lock it out of the account, the password right or not
            with contextlib.suppress(AuthenticationError):
                client.login(account.username, "not-the-password")
        with pytest.raises(RateLimited) as locked:
            client.login(account.username, PASSWORD)
    assert locked.value.status_code == 429
    assert locked.value.retry_after is not None and locked.value.retry_after > 0
    assert "attempts" in locked.value.detail.lower() or "locked" in locked.value.detail.lower()


def test_errors_are_raised_by_kind_with_the_apis_detail(system, client, market, crossing):
    # a bot that is not there
    with pytest.raises(NotFound) as missing:
        client.bot_get(999_999)
    assert (missing.value.status_code, missing.value.detail) == (404, "Bot not found")

    # a refused field: a 422 and its list
    with pytest.raises(ValidationError) as refused:
        client.bot_create("bad", crossing, stake_amount=100, timeframe="7m")
    assert refused.value.status_code == 422
    [error] = refused.value.errors
    assert (error["loc"], error["input"]) == (["body", "timeframe"], "7m")
    assert "timeframe: " in refused.value.message

    # a command that would change nothing
    bot = client.bot_create("stopped", crossing, stake_amount=100, pair_whitelist=["BTC/USDT"])
    with pytest.raises(Conflict) as conflict:
        client.bot_stop(bot["id"])
    assert conflict.value.detail == "Bot stopped is already stopped."

    # a superuser's endpoint
    with pytest.raises(PermissionDenied) as denied:
        client.hosts()
    assert denied.value.status_code == 403

    # nothing listening at all
    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(ServerUnreachable):
        nowhere.health()
    with Client(system.url) as anonymous, pytest.raises(AuthenticationError) as anonymous_refused:
        anonymous.bots_list()
    assert anonymous_refused.value.detail == "Not authenticated"


def test_an_access_token_that_expired_is_refreshed_once_and_the_request_sent_again(system, account):
    # given: a server whose access tokens last 3 seconds (the listeners of the system relay its events)
    env = {**system.env, "DJANGO_SETTINGS_MODULE": "tests.client.settings", "MULTIBOT_TEST_ACCESS_SECONDS": "3"}
    with uvicorn_server(env) as url, Client(url) as client:
        client.login(account.username, PASSWORD)
        with client.events(["audit_event"]) as events:
            first = client.tokens
            assert first is not None and first.expires_at - time.time() <= 3 and not first.expired()

            # when: the access token has expired (and the server has closed the socket it opened)
            time.sleep(3.2)
            bot_count = len(client.bots_list())

            # then: refreshed before the request (its expiry was known), and the request went through
            second = client.tokens
            assert bot_count == 0 and second.access_token != first.access_token

            # and the event stream opens a new socket, refreshed, and hears what happens next
            # (an audited request that takes less than the sockets' 3 seconds)
            _drain(events, 0.5)
            client.ws_ticket()
            ticket = _next_event(events, lambda event: event.data["action"] == "ws_ticket", "the ticket's")
            assert ticket.data["user"] == account.username

        # when: an expired token the client cannot tell is expired: the server's 401, a refresh, the same request
        client.store.save(Tokens(access_token=first.access_token, refresh_token=client.tokens.refresh_token))
        status = client.monitoring_status()
        assert status["bot_statistics"]["total_bots"] == 0
        assert client.tokens.access_token not in (first.access_token, second.access_token)
    refreshes = AuditLog.objects.filter(username=account.username, action=AuditLog.Action.TOKEN_REFRESH)
    assert refreshes.filter(status=AuditLog.Status.SUCCESS).count() >= 3
    assert not refreshes.filter(status=AuditLog.Status.DENIED).exists()


def _drain(events: Any, seconds: float) -> None:
    """Read (and drop) what arrives for ``seconds``: the stream reconnects meanwhile if it must."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError):
        while time.monotonic() < deadline:
            events.next(timeout=max(0.01, deadline - time.monotonic()))


# -- bots ------------------------------------------------------------------------------------------
def test_a_bot_is_created_run_read_and_killed_through_the_client(system, client, account, admin, market, crossing):
    # given: a bot, edited while stopped
    bot = client.bot_create("runner", crossing, stake_amount=50, pair_whitelist=["BTC/USDT"], timeframe="5m")
    assert (bot["status"], bot["dry_run"], bot["exchange"]) == ("stopped", True, "replay")
    bot = client.bot_update(bot["id"], stake_amount=100, max_open_trades=2)
    assert (client.bot_get(bot["id"])["stake_amount"], bot["max_open_trades"]) == (100, 2)
    assert [found["id"] for found in client.bots_list()] == [bot["id"]]
    assert client.bot_process(bot["name"]) == {"bot_id": bot["id"], "bot_name": "runner", "pid": None,
                                               "status": "not_running"}  # fmt: skip

    with client.events(["bot_status_update"]) as events:
        # when: started (a restart starts a stopped bot)
        answer = client.bot_restart(bot["id"])
        placed = answer.pop("host")  # the gateway's host, or "" before its first heartbeat (then it claims it)
        assert answer == {"status": "restart_command_sent", "bot_name": "runner", "bot_id": bot["id"]}

        # then: the gateway's news of it arrives as an event, and the bot answers through its pass-through
        running = _next_event(events, lambda event: event.data["status"] == "running", "the bot running")
        assert running.data["bot_id"] == bot["id"]
        with pytest.raises(Conflict):
            client.bot_start(bot["id"])
        assert client.bots_start_all()["results"][0]["detail"] == "Bot runner is already running."
        status = client.bot_status(bot["id"])
        assert (status["bot_status"], status["desired_state"], status["pid"]) == ("running", "running",
                                                                                  running.data["pid"])  # fmt: skip
        process = client.bot_process(bot["id"])
        assert process["pid"] == running.data["pid"] and process["memory_usage_mb"] > 0
        assert client.ft(bot["id"], "GET", "ping") == {"status": "pong"}
        assert client.ft(bot["id"], "GET", "/api/v1/show_config")["strategy"] == crossing
        assert client.ft(bot["id"], "GET", "trades", params={"limit": 5})["trades"] == []
        assert "ETH/USDT" in client.ft(bot["id"], "POST", "blacklist", json={"blacklist": ["ETH/USDT"]})["blacklist"]
        assert client.ft(bot["id"], "POST", "stopentry")["status"]
        with pytest.raises(NotFound) as not_freqtrades:
            client.ft(bot["id"], "GET", "api/v1/no-such-path")
        assert not_freqtrades.value.status_code == 404
        assert any("freqtrade" in line.lower() for line in client.bot_logs(bot["id"], lines=50)["logs"])
        hosts = admin.hosts()["hosts"]
        assert any(placed["id"] == bot["id"] for host in hosts for placed in host["bots"])
        # FreqUI's login through the client: tokens for this bot's /ft/ API only
        tokens = client.ft_token_login(bot["id"], account.username, PASSWORD)
        assert set(tokens) == {"access_token", "refresh_token"}
        assert set(client.ft_token_refresh(bot["id"], tokens["refresh_token"])) == {"access_token"}
        with pytest.raises(Conflict, match="stop it before moving it"):
            admin.bot_move(bot["id"], placed or client.bot_get(bot["id"])["host"])

        # when: killed by name: the bot stops, and the fleet commands then find nothing to stop
        killed = client.bot_emergency_stop("runner")
        assert killed["status"] == "emergency_stop_command_sent"
        _next_event(events, lambda event: event.data["status"] in ("stopped", "error"), "the bot stopped")
    assert client.bot_process(bot["id"])["status"] == "not_running"
    assert client.bots_stop_all()["results"] == [{"status": "refused", "bot_name": "runner", "bot_id": bot["id"],
                                                  "detail": "Bot runner is already stopped."}]  # fmt: skip
    stopped_all = client.emergency_stop_all()
    assert (stopped_all["bot_ids"], stopped_all["force_exit"], stopped_all["bots"][0]["was"]) == (
        [bot["id"]], False, "stopped")  # fmt: skip

    # when: deleted (stopped: at once)
    assert client.bot_delete(bot["id"]) is None
    with pytest.raises(NotFound):
        client.bot_get(bot["id"])
    assert client.bots_restart_all() == {"results": [], "total": 0}


def test_freqai_models_answer_through_the_client_with_the_apis_errors(client):
    assert client.freqai_models_list() == []  # a new user's
    with pytest.raises(ValidationError) as refused:
        client.freqai_model_create("m1", "NoSuchRegressor", "FreqaiExampleStrategy")
    assert any(error["loc"][-1] == "model_type" for error in refused.value.errors)
    for call in (client.freqai_model_get, client.freqai_model_status, client.freqai_model_train,
                 client.freqai_model_delete):  # fmt: skip
        with pytest.raises(NotFound):
            call(987654)
    with pytest.raises(NotFound):
        client.freqai_model_update(987654, description="x")


# -- strategies and jobs ------------------------------------------------------------------------------
def test_strategies_and_hyperopt_jobs_through_the_client(system, client, market, crossing):
    # given: two strategies of the user's, one with hyperoptable parameters
    tunable = client.strategy_upload(TUNABLE.encode(), filename="tunable.py")
    assert (tunable["status"], tunable["strategy_name"], tunable["new_version"]) == ("uploaded", "Tunable", True)
    assert {crossing, "Tunable"} <= set(client.strategies_list())
    assert client.hyperopt_strategies() == ["Tunable"]
    detail = client.strategy_get("Tunable", source=True)
    assert detail["current_version"] == tunable["version"]["sha256"] and "class Tunable" in detail["source"]
    assert {parameter["name"] for parameter in detail["parameters"]} == {"fast_period", "exit_margin"}
    losses = client.hyperopt_losses()
    assert losses["default"] in losses["losses"]

    # when: a hyperopt is started, then cancelled
    window = timerange(1)
    started = client.hyperopt_start("Tunable", timerange=window, epochs=5, pairs=["BTC/USDT"], spaces=["buy"])
    assert (started["status"], started["strategy_name"]) == ("optimization_started", "Tunable")
    with pytest.raises(TimeoutError, match="is still"):
        client.job_wait(started["task_id"], timeout=0.5)
    cancelled = client.job_cancel(started["task_id"])
    assert cancelled["status"] in ("cancelled", "cancel_requested")
    finished = client.job_wait(started["task_id"], timeout=60)

    # then: it ended cancelled, and nothing is applied from it
    assert finished["status"] == "cancelled"
    result = client.hyperopt_result(started["task_id"], per_page=5)
    assert (result["status"], result["epochs_total"], result["best_result"]) == ("cancelled", 5, None)
    with pytest.raises(Conflict) as not_applied:
        client.hyperopt_apply(started["task_id"])
    assert not_applied.value.detail
    page = client.jobs_list(kind="hyperopt")
    assert [job["id"] for job in page["jobs"]] == [finished["id"]] and page["total"] == 1
    assert client.job_get(finished["id"])["parameters"]["epochs"] == 5
    assert client.job_logs(finished["id"])["status"] == "cancelled"
    with pytest.raises(ValidationError) as no_candles:
        client.backtest_start(crossing, timerange=window, pairs=["XRP/USDT"])
    assert no_candles.value.errors[0]["msg"] == "No 5m candles are stored for XRP/USDT."

    # and a strategy deleted is gone
    client.strategy_delete("Tunable")
    with pytest.raises(NotFound):
        client.strategy_get("Tunable")


# -- data, analytics, audit, monitoring, streams ----------------------------------------------------------
CSV = (
    b"date,open,high,low,close,volume\n2025-01-01 00:00:00,1.0,1.2,0.9,1.1,10\n2025-01-01 00:05:00,1.1,1.3,1.0,1.2,12\n"
)


def test_data_analytics_audit_monitoring_and_streams_answer_through_the_client(system, client, account, admin, market):
    # data: an upload merged, listed, and downloaded back in the format it came in
    uploaded = client.data_upload(CSV, pair="ADA/USDT", timeframe="5m", filename="ada.csv")
    assert (uploaded["added"], uploaded["records"], uploaded["data"]["pair"]) == (2, 2, "ADA/USDT")
    assert ("ADA/USDT", "5m") in {(row["pair"], row["timeframe"]) for row in client.data_list()["data"]}
    downloaded = client.data_download("ADA/USDT", "5m")
    assert downloaded.splitlines()[0] == b"date,open,high,low,close,volume" and len(downloaded.splitlines()) == 3
    with pytest.raises(NotFound):
        client.data_download("DOGE/USDT", "5m")

    # analytics: figures of a user without trades
    assert client.analytics_performance(window="7d")["timeframe"] == "7d"
    assert client.analytics_risk(dry_run=True)["data"] == []
    assert client.analytics_portfolio(stake_currency="usdt")["data"] == []
    assert client.analytics_profit()["data"] == []
    assert client.analytics_trades(is_open=False, per_page=5) == {"trades": [], "total": 0, "page": 1, "per_page": 5}
    assert "btc_usdt" in client.analytics_market()["data"]
    with pytest.raises(ValidationError):
        client.analytics_performance(window="forever")

    # audit: the upload, by its user
    logs = client.audit_logs(action="data_upload", per_page=5)
    assert [(entry["user"], entry["status"]) for entry in logs["logs"]] == [(account.username, "success")]

    # monitoring: the components of the running system
    health = client.health()
    assert {component["name"] for component in health["component_health"]} >= {"database", "redis"}
    assert client.monitoring_status()["system_metrics"]["cpu"]["usage_percent"] >= 0

    # streams: the twelve, their figures, and the dead-letter queues (superusers for their messages)
    names = client.streams_list()["streams"]
    assert "mgmt:trading:commands" in names and client.streams_list()["total"] == len(names)
    assert client.streams_health()["redis_connected"] is True
    assert set(client.streams_metrics()["streams"]) >= {"audit:events", "system:events"}
    assert client.stream_health("audit:events")["length"] >= 1
    assert client.stream_config("audit:events")["name"] == "audit:events"
    assert client.dlq_stats("system:events")["stream"] == "system:events:dead"
    with pytest.raises(PermissionDenied):
        client.dlq_messages("system:events")
    assert admin.dlq_messages("system:events", limit=5) == []
    replayed = admin.dlq_replay("system:events", message_ids=["1-1"])
    assert (replayed["replayed"], replayed["not_found"]) == (0, ["1-1"])
    assert admin.dlq_purge("system:events", message_ids=["1-1"]) == {"stream": "system:events", "purged": 0}
    with pytest.raises(NotFound):
        client.stream_config("no:such:stream")


def test_a_superuser_manages_users_through_the_client(admin):
    created = admin.user_create("carol", "carol-password-1", email="carol@example.com", full_name="Carol")
    assert (created["username"], created["is_active"], created["is_superuser"]) == ("carol", True, False)
    assert admin.user_get(created["id"])["email"] == "carol@example.com"
    assert "carol" in [user["username"] for user in admin.users_list()]
    assert admin.user_deactivate(created["id"])["is_active"] is False
    with Client(admin.url) as carol, pytest.raises(AuthenticationError):
        carol.login("carol", "carol-password-1")
    assert admin.user_activate(created["id"])["is_active"] is True


# -- events ----------------------------------------------------------------------------------------
def test_the_event_iterator_opens_with_a_ticket_and_hears_its_users_own_events(system, client, account):
    other = make_user()
    with Client(system.url) as theirs:
        theirs.login(other.username, PASSWORD)
        with client.events(["audit_event"], ticket=True) as mine, theirs.events(["audit_event"]) as others:
            assert mine.welcome["user"]["username"] == account.username
            # when: the user does something
            client.strategy_upload(TUNABLE.encode(), filename="tunable.py")
            # then: their socket hears it; the other user's does not
            event = _next_event(mine, lambda event: event.data["action"] == "strategy_upload", "the upload's")
            assert (event.type, event.data["user"], event.data["status"]) == ("audit_event", account.username,
                                                                              "success")  # fmt: skip
            # (sent to both at once, if it were: by now it would have arrived)
            with pytest.raises(TimeoutError):
                _next_event(others, lambda event: event.data["action"] == "strategy_upload", "nothing", within=1)
    with pytest.raises(ValueError, match="unknown event types"):
        client.events(["no_such_event"])


# -- the asyncio client ------------------------------------------------------------------------------
def test_the_asyncio_client_refreshes_once_for_requests_refused_together_and_iterates_events(system, account):
    async def scenario() -> tuple[list[Any], Event, int]:
        async with AsyncClient(system.url) as client:
            await client.login(account.username, PASSWORD)
            tokens = client.tokens
            # given: an access token the server refuses (revoked for being expired is the same answer), its
            # expiry unknown to the client, and a valid refresh token
            client.store.save(Tokens(access_token=tokens.access_token + "x", refresh_token=tokens.refresh_token))
            # when: five requests at once
            answers = await asyncio.gather(client.bots_list(), client.strategies_list(), client.jobs_list(),
                                           client.data_list(), client.monitoring_status())  # fmt: skip
            async with client.events(["audit_event"]) as events:
                await client.strategy_upload(TUNABLE.encode(), filename="tunable.py")
                while True:
                    event = await events.next(timeout=EVENT_WAIT)
                    if event.data["action"] == "strategy_upload":
                        break
            with pytest.raises(NotFound):
                await client.job_get(999_999)
            refreshes = (await client.audit_logs(action="token_refresh"))["total"]
            await client.logout()
            return answers, event, refreshes

    answers, event, refreshes = asyncio.run(scenario())
    assert answers[0] == [] and answers[2]["total"] == 0
    assert event.data["user"] == account.username
    # then: one refresh for the five refusals (a second would have spent a rotated token: every session ended)
    assert refreshes == 1
    assert not AuditLog.objects.filter(action=AuditLog.Action.TOKEN_REFRESH, status=AuditLog.Status.DENIED).exists()
