"""Placement and routing: a bot gets a host at its first start and keeps it; each gateway acts only on its
own bots' commands; superusers pin and move bots; commands and emergency stops say which hosts are away."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from audit.models import AuditLog
from audit.services import Actor
from bots.commands import (
    BotStatus,
    Command,
    DesiredState,
    HostCapacity,
    Report,
    build_bot_command,
    build_bot_status,
    build_gateway_heartbeat,
)
from bots.gateway.service import Gateway
from bots.listeners import handle_gateway_heartbeat
from bots.models import Bot, Host
from bots.services import bot_command, bot_status_apply
from multibot.redis_client import redis_client
from strategies.library import install_builtin_strategies
from streams.bus import Envelope, stream_key
from streams.catalog import TRADING_STATUS
from streams.models import OutboxEntry
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _strategies(db: object) -> None:
    install_builtin_strategies()  # a start needs its strategy in the library


def register(host: str, *, slots: int = 4, ago: float = 0.0) -> None:
    """``host``'s gateway beat ``ago`` seconds ago, with ``slots`` bot slots."""
    capacity = HostCapacity(bot_slots=slots, memory_total_mb=8192, memory_available_mb=4096, cpus=2,
                            gateway_started_at=time.time() - 600)  # fmt: skip
    beat = build_gateway_heartbeat(bots=[], at=time.time() - ago, host=host, capacity=capacity)
    handle_gateway_heartbeat(Envelope(type=Report.GATEWAY_HEARTBEAT, payload=dict(beat)))


def start(api: APIClient, bot: Bot) -> dict:
    response = api.post(f"/api/v1/bots/{bot.pk}/start")
    assert response.status_code == 202, response.content
    return response.json()


def host_of(bot: Bot) -> str:
    return Bot.objects.values_list("host", flat=True).get(pk=bot.pk)


# -- placement --------------------------------------------------------------------------------------
def test_a_first_start_places_the_bot_on_the_live_host_with_the_most_free_slots(user, user_api):
    # given: alpha has 3 slots and 2 bots that hold one; beta has 2 free; gamma is the freest but down
    register("alpha", slots=3)
    register("beta", slots=2)
    register("gamma", slots=10, ago=120)
    for _ in range(2):
        busy = make_bot(owner=user)
        Bot.objects.filter(pk=busy.pk).update(host="alpha", desired_state=DesiredState.RUNNING)
    bot = make_bot(owner=user)

    # when
    answer = start(user_api, bot)

    # then: placed in the start's own transaction, said in the answer and in the audit row
    assert answer == {"status": "start_command_sent", "bot_name": bot.name, "bot_id": bot.pk, "host": "beta"}
    assert host_of(bot) == "beta"
    row = AuditLog.objects.filter(action=AuditLog.Action.BOT_START).latest("id")
    assert row.details == {"bot_name": bot.name, "placed_on": "beta"}


def test_equal_hosts_fill_evenly_and_a_placed_bot_keeps_its_host(user, user_api):
    # given
    register("alpha", slots=4)
    register("beta", slots=4)
    bots = [make_bot(owner=user) for _ in range(4)]

    # when: four first starts
    placed = [start(user_api, bot)["host"] for bot in bots]

    # then: alternating (by name among equals), and a stop and a start again keep each where it is
    assert placed == ["alpha", "beta", "alpha", "beta"]
    Bot.objects.filter(pk=bots[0].pk).update(desired_state=DesiredState.STOPPED)
    register("gamma", slots=40)
    assert start(user_api, bots[0])["host"] == "alpha"


def test_two_first_starts_at_once_spread_as_two_in_turn_do(committed_db, user):
    # given: two hosts of one slot each, and two bots never placed
    register("alpha", slots=1)
    register("beta", slots=1)
    first, second = make_bot(owner=user), make_bot(owner=user)
    actor = Actor(user=user, ip_address="127.0.0.1")
    placed: dict[str, str] = {}
    second_done = threading.Event()

    def start_second() -> None:
        try:
            placed["second"] = bot_command(actor=actor, bot=second, command=Command.START)["host"]
        finally:
            second_done.set()
            connection.close()

    # when: the second start is made while the first one's transaction is still open (two web workers)
    with transaction.atomic():
        placed["first"] = bot_command(actor=actor, bot=first, command=Command.START)["host"]
        thread = threading.Thread(target=start_second)
        thread.start()
        second_done.wait(1)  # it finishes without the first's placement, or waits for it
    thread.join(30)

    # then: the second saw the first's host taken
    assert placed == {"first": "alpha", "second": "beta"}
    assert [host_of(first), host_of(second)] == ["alpha", "beta"]


def test_with_no_live_host_a_start_leaves_the_bot_unplaced_and_the_first_gateway_claims_it(user, user_api):
    # given: no gateway has registered yet (make run's first seconds)
    bot = make_bot(owner=user)
    assert start(user_api, bot)["host"] == ""
    alpha, beta = Gateway(host="alpha"), Gateway(host="beta")
    try:
        # when: both gateways see the same start (each reads it in its own group)
        row = Bot.objects.get(pk=bot.pk)
        claimed = [alpha._claim(Bot.objects.get(pk=bot.pk)), beta._claim(row)]
    finally:
        alpha.supervisor.shutdown()
        beta.supervisor.shutdown()

    # then: exactly one has it
    assert claimed == [True, False]
    assert host_of(bot) == "alpha"


def test_a_gateway_leaves_another_hosts_bot_alone(user):
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(host="beta", desired_state=DesiredState.RUNNING)
    alpha = Gateway(host="alpha")
    try:
        started = alpha.bot_start(build_bot_command(bot_id=bot.pk))
        Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.STOPPED)
        stopped = alpha.bot_stop(build_bot_command(bot_id=bot.pk)).result(timeout=5)
        emergency = alpha.emergency_stop({"bot_ids": [bot.pk], "force_exit": False})
    finally:
        alpha.supervisor.shutdown()
    assert (started, stopped, emergency) == ("another_host", "not_here", {})
    assert redis_client().xlen(stream_key(TRADING_STATUS)) == 0  # alpha said nothing about beta's bot


def test_a_late_report_from_a_bots_old_host_does_not_move_it_back(user):
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(host="beta")
    assert bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.STOPPED, at=time.time(),
                                                    host="alpha"))  # fmt: skip
    assert host_of(bot) == "beta"


def test_a_gateways_report_places_an_unplaced_bot_it_claimed(user):
    bot = make_bot(owner=user)
    assert bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.STARTING, at=time.time(),
                                                    host="alpha"))  # fmt: skip
    assert host_of(bot) == "alpha"


# -- a host that is down ----------------------------------------------------------------------------
def test_a_command_for_a_bot_whose_host_is_down_is_sent_and_said_to_wait(user, user_api):
    register("beta", ago=120)
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(host="beta")

    answer = start(user_api, bot)

    assert answer["host"] == "beta" and answer["waiting_for_host"] is True
    assert answer["detail"] == "Host beta's gateway is not answering; the command waits for it."
    assert OutboxEntry.objects.filter(type=Command.START).count() == 1  # queued all the same


def test_the_emergency_outcome_names_the_hosts_that_do_not_answer(user, user_api):
    # given: bots on alpha (live), beta (down) and one never placed
    register("alpha")
    register("beta", ago=120)
    on_alpha, on_beta, unplaced = make_bot(owner=user), make_bot(owner=user), make_bot(owner=user)
    Bot.objects.filter(pk=on_alpha.pk).update(host="alpha", status=BotStatus.RUNNING)
    Bot.objects.filter(pk=on_beta.pk).update(host="beta", status=BotStatus.RUNNING)

    # when
    response = user_api.post("/api/v1/emergency/stop-all", {}, format="json")

    # then
    assert response.status_code == 202
    body = response.json()
    assert body["hosts"] == [{"host": "alpha", "answering": True}, {"host": "beta", "answering": False}]
    assert body["hosts_not_answering"] == ["beta"]
    assert {bot["bot_id"]: bot["host"] for bot in body["bots"]} == {on_alpha.pk: "alpha", on_beta.pk: "beta",
                                                                    unplaced.pk: ""}  # fmt: skip


# -- pinning and moving (superusers) ----------------------------------------------------------------
def test_a_superuser_pins_a_bot_to_a_registered_host_and_the_start_keeps_it(superuser, admin_api):
    register("alpha", slots=10)
    register("beta", slots=1)
    bot = make_bot(owner=superuser)

    response = admin_api.patch(f"/api/v1/bots/{bot.pk}/", {"host": "beta"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["host"] == "beta"
    assert start(admin_api, bot)["host"] == "beta"


def test_pinning_is_for_superusers_and_names_only_registered_hosts(user, user_api, superuser, admin_api):
    register("alpha")
    bot, own = make_bot(owner=user), make_bot(owner=superuser)

    refused = user_api.patch(f"/api/v1/bots/{bot.pk}/", {"host": "alpha"}, format="json")
    created = user_api.post("/api/v1/bots/", {"name": "pinned", "strategy_name": "SampleStrategy",
                                              "stake_amount": 10, "host": "alpha"}, format="json")  # fmt: skip
    unknown = admin_api.patch(f"/api/v1/bots/{own.pk}/", {"host": "nowhere"}, format="json")

    assert refused.status_code == 403 and created.status_code == 403
    assert "Only a superuser places bots on hosts" in refused.json()["detail"]
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "host"]
    assert "No host named 'nowhere' has registered" in unknown.json()["detail"][0]["msg"]
    assert host_of(bot) == host_of(own) == ""
    assert not Bot.objects.filter(name="pinned").exists()


def test_a_superuser_moves_a_stopped_bot_and_the_move_is_audited(user, superuser, admin_api):
    register("alpha")
    register("beta")
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(host="alpha")

    response = admin_api.post(f"/api/v1/bots/{bot.pk}/move", {"host": "beta"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["host"] == "beta"
    assert host_of(bot) == "beta"
    row = AuditLog.objects.filter(action=AuditLog.Action.BOT_UPDATE).latest("id")
    assert row.details == {"bot_name": bot.name, "changes": {"host": "beta"}, "moved_from": "alpha"}
    assert row.user == superuser


@pytest.mark.parametrize(("setup", "body", "status", "says"), [
    ({"status": BotStatus.RUNNING, "desired_state": DesiredState.RUNNING}, {"host": "beta"}, 409, "stop it before"),
    ({"desired_state": DesiredState.RUNNING}, {"host": "beta"}, 409, "stop it before"),
    ({}, {"host": "alpha"}, 409, "is on alpha already"),
    ({}, {"host": "nowhere"}, 422, "No host named 'nowhere'"),
    ({}, {"host": ""}, 422, "This field may not be blank."),
    ({}, {"host": 7}, 422, "Must be a string."),
    ({}, {}, 422, "This field is required."),
])  # fmt: skip
def test_a_move_that_cannot_be_done_is_refused_and_changes_nothing(user, admin_api, setup, body, status, says):
    register("alpha")
    register("beta")
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(host="alpha", **setup)

    response = admin_api.post(f"/api/v1/bots/{bot.pk}/move", body, format="json")

    assert response.status_code == status, response.content
    assert says in str(response.json()["detail"])
    assert host_of(bot) == "alpha"
    assert not AuditLog.objects.filter(action=AuditLog.Action.BOT_UPDATE, status=AuditLog.Status.SUCCESS).exists()


def test_moving_is_for_superusers_and_an_unknown_bot_is_not_found(user, user_api, admin_api):
    register("beta")
    bot = make_bot(owner=user)

    assert user_api.post(f"/api/v1/bots/{bot.pk}/move", {"host": "beta"}, format="json").status_code == 403
    assert admin_api.post("/api/v1/bots/999999/move", {"host": "beta"}, format="json").status_code == 404
    assert host_of(bot) == ""


# -- ports: each host its own range ---------------------------------------------------------------------
def register_range(host: str, first: int, last: int) -> None:
    register(host)
    Host.objects.filter(name=host).update(api_port_first=first, api_port_last=last)


def port_of(bot: Bot) -> int:
    return Bot.objects.values_list("api_port", flat=True).get(pk=bot.pk)


def test_a_bot_placed_on_a_host_takes_a_port_of_that_hosts_range_and_keeps_one_already_in_it(user, user_api):
    # given: beta's bots listen on 28100-28101, and one port of it is taken
    register_range("beta", 28100, 28101)
    taken, bot, second, third = (make_bot(owner=user) for _ in range(4))
    Bot.objects.filter(pk=taken.pk).update(api_port=28100, host="beta")

    # when / then: the first start places it on beta, with beta's free port
    assert start(user_api, bot)["host"] == "beta"
    assert port_of(bot) == 28101
    # a bot already in the range keeps its port; a bot for a full range is refused before anything changes
    Bot.objects.filter(pk=taken.pk).update(api_port=28050)
    Bot.objects.filter(pk=second.pk).update(api_port=28100)
    assert start(user_api, second)["host"] == "beta" and port_of(second) == 28100
    full = user_api.post(f"/api/v1/bots/{third.pk}/start")
    assert full.status_code == 503
    assert full.json()["detail"] == "No free bot API port left in beta's range 28100-28101."
    assert host_of(third) == "" and not OutboxEntry.objects.filter(payload__bot_id=third.pk).exists()


def test_the_heartbeat_registers_the_hosts_port_range(settings):
    settings.BOTS = {**settings.BOTS, "api_port_first": 28200, "api_port_last": 28299}
    settings.GATEWAY = {**settings.GATEWAY, "snapshot_seconds": 0}
    gateway = Gateway(host="gamma")
    try:
        beat = gateway.heartbeat()
    finally:
        gateway.supervisor.shutdown()
    assert beat is not None
    handle_gateway_heartbeat(Envelope(type=Report.GATEWAY_HEARTBEAT, payload=dict(beat)))
    assert Host.objects.values_list("api_port_first", "api_port_last").get(name="gamma") == (28200, 28299)


def test_a_bot_on_another_machine_is_not_looked_up_by_pid_here_unless_its_host_is_on_this_machine(
    user, user_api, settings
):
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(host="beta", pid=1, status=BotStatus.RUNNING)  # pid 1: not ours

    elsewhere = user_api.get(f"/api/v1/bots/{bot.pk}/process").json()
    settings.BOTS = {**settings.BOTS, "local_hosts": frozenset({"beta"})}
    here = user_api.get(f"/api/v1/bots/{bot.pk}/process").json()

    assert elsewhere == {"bot_id": bot.pk, "bot_name": bot.name, "pid": 1, "status": "running", "host": "beta",
                         "detail": "runs on another host"}  # fmt: skip
    assert here == {"bot_id": bot.pk, "bot_name": bot.name, "pid": 1, "status": "not_running"}


def test_a_bot_to_run_keeps_its_host_until_it_is_stopped_and_a_user_may_send_back_the_host_it_has(
    user, user_api, superuser, admin_api
):
    register("alpha")
    register("beta")
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(host="alpha", desired_state=DesiredState.RUNNING)

    moving = admin_api.patch(f"/api/v1/bots/{bot.pk}/", {"host": "beta"}, format="json")
    Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.STOPPED)
    unchanged = user_api.patch(f"/api/v1/bots/{bot.pk}/", {"host": "alpha", "max_open_trades": 4}, format="json")

    assert moving.status_code == 409
    assert moving.json()["detail"] == f"Bot {bot.name} is to run on alpha; stop it before moving it."
    assert unchanged.status_code == 200, unchanged.content
    assert host_of(bot) == "alpha"
