"""Two bot hosts on one machine, on PostgreSQL and one Redis: each gateway acts on its own bots, and only them.

Two gateways run as hosts alpha and beta, each with its own bots directory and API port range, and the
listeners beside them, all on the test database and the suite's Redis; the API is the test client, in
this process. The bots are real freqtrade processes on the replay exchange, two per host.

One scenario, in four steps that each print how long they took: its bots start once, and each step
begins where the last one left them (starting real bots is most of the cost):
  1. start-all places the bots on both hosts and starts every one there;
  2. beta's gateway stops: its commands wait for it, alpha takes none of them, and beta carries them out
     when it returns;
  3. Redis freezes for 20 s while commands for both hosts are sent: each is carried out once after;
  4. an emergency stop, both hosts answering, leaves no process on either.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from audit.models import AuditLog
from audit.resources import bot_resource
from bots.gateway.service import GATEWAY
from bots.models import Bot
from bots.selectors import host_states
from streams.catalog import TRADING_COMMANDS, trading_group
from tests.factories import client_for
from tests.support.fleet import SNAPSHOT_SECONDS, BotHost, System, alive, fleet, free_port_range, records
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="two hosts share one database as two machines do: PostgreSQL (the suite's DATABASE_URL run)",
    ),
]

HOSTS = ("alpha", "beta")
BOTS_PER_HOST = 2
PORTS_PER_HOST = 10
# How long a host's gateway may be silent before the API says its commands wait (GATEWAY's
# host_down_after_seconds, in this process where the API runs): three snapshot periods, so that a live
# host under load never reads down.
DOWN_AFTER_SECONDS = 3 * SNAPSHOT_SECONDS
FREEZE_SECONDS = 20


@pytest.fixture
def two_hosts(systems: Any, tmp_path: Path) -> System:
    """The gateways of alpha and beta (equal slots, ports of their own) and the listeners, both hosts live."""
    # Under the home, where tests/settings.py lets a gateway keep the bots directory it is given.
    home = Path(django_settings.HOME) / "hosts" / tmp_path.name
    ports = free_port_range(PORTS_PER_HOST * len(HOSTS))
    hosts = [BotHost(name, home / name / "bots", ports[index * PORTS_PER_HOST : (index + 1) * PORTS_PER_HOST],
                     slots=BOTS_PER_HOST) for index, name in enumerate(HOSTS)]  # fmt: skip
    system = systems(hosts=hosts)
    wait_for(lambda: {name for name, state in host_states().items() if state.live} == set(HOSTS), 90,
             "both gateways to register their hosts")  # fmt: skip
    return system


@dataclass
class Fleet:
    """Two users, each with a bot on each host once placed: p_alpha, p_beta, q_alpha, q_beta (in that order)."""

    system: System
    admin: Any
    p: Any
    q: Any
    p_alpha: Bot
    p_beta: Bot
    q_alpha: Bot
    q_beta: Bot

    @property
    def bots(self) -> list[Bot]:
        return [self.p_alpha, self.p_beta, self.q_alpha, self.q_beta]

    def pids(self) -> dict[int, int | None]:
        return {bot.pk: bot.pid for bot in records(self.bots)}


@pytest.fixture
def scene(two_hosts: System, superuser: Any) -> Fleet:
    (p_alpha, p_beta), p = fleet(BOTS_PER_HOST)
    (q_alpha, q_beta), q = fleet(BOTS_PER_HOST)
    return Fleet(two_hosts, client_for(superuser), p, q, p_alpha, p_beta, q_alpha, q_beta)


def _host_status(admin: Any) -> dict[str, str]:
    response = admin.get("/api/v1/hosts/")
    assert response.status_code == 200, response.content
    return {host["name"]: host["status"] for host in response.json()["hosts"]}


def _waiting(api: Any) -> dict[str, tuple[int | None, int]]:
    """Each consumer group of the trading commands as the stream's health shows it: (lag, pending)."""
    response = api.get(f"/api/v1/streams/{TRADING_COMMANDS}/health")
    assert response.status_code == 200, response.content
    return {group: (figures["lag"], figures["pending"]) for group, figures in response.json()["groups"].items()}


def _starts(bot: Bot, *, since: float, reason: str | None = None) -> int:
    """The starts a gateway made of ``bot`` (for ``reason``) since the moment ``since``, by their audit rows
    (bot_start by the gateway: the user's start command is a bot_start row too)."""
    rows = AuditLog.objects.filter(action="bot_start", resource=bot_resource(bot.pk), username=GATEWAY.name,
                                   timestamp__gte=datetime.fromtimestamp(since, UTC))  # fmt: skip
    return (rows.filter(details__reason=reason) if reason else rows).count()


def test_two_hosts_run_one_fleet_each_acting_on_its_own_bots_through_a_host_down_and_a_frozen_redis(
    scene, redis_server, settings
):
    normal = settings.GATEWAY
    _start_all_places_the_bots_on_both_hosts_and_starts_each_there(scene)
    settings.GATEWAY = {**normal, "host_down_after_seconds": DOWN_AFTER_SECONDS}
    _a_hosts_commands_wait_for_its_gateway_and_no_other_gateway_takes_them(scene)
    # While Redis is frozen the heartbeats wait too: no host reads down meanwhile, every command is routed.
    settings.GATEWAY = {**normal, "host_down_after_seconds": 120}
    _commands_sent_while_redis_is_frozen_reach_both_hosts_once_when_it_returns(scene, redis_server)
    settings.GATEWAY = normal
    _an_emergency_stop_both_hosts_answer_leaves_no_process_on_either(scene)


def _start_all_places_the_bots_on_both_hosts_and_starts_each_there(scene: Fleet) -> None:
    system = scene.system
    # when: start-all, by a superuser (every bot), none placed yet
    since = time.monotonic()
    started = scene.admin.post("/api/v1/bots/start-all")

    # then: each first start places its bot on the live host with the most free slots, so they alternate
    assert started.status_code == 202, started.content
    results = started.json()["results"]
    assert [(result["bot_id"], result["host"]) for result in results] == [
        (bot.pk, HOSTS[index % 2]) for index, bot in enumerate(scene.bots)
    ]
    assert not any("waiting_for_host" in result for result in results)
    # and every bot runs, once, under its own host's bots directory, its API on a port of its host's range
    took = system.time_to_truth(scene.bots, running=True, timeout=120, since=since)
    processes = system.bot_processes()
    for bot in records(scene.bots):
        host = system.hosts[bot.host]
        assert processes[host.config(bot.pk)] == [bot.pid] and alive(bot.pid)
        assert bot.api_port in host.ports, (bot.name, bot.host, bot.api_port, host.ports)
    listing = {host["name"]: host for host in scene.admin.get("/api/v1/hosts/").json()["hosts"]}
    for index, name in enumerate(HOSTS):
        assert listing[name]["status"] == "live"
        assert [bot["id"] for bot in listing[name]["bots"]] == [bot.pk for bot in scene.bots[index::2]]
        assert listing[name]["capacity"]["free_slots"] == 0
    print(f"\n1. start-all: {len(scene.bots)} bots placed on alpha and beta in turn, all running in {took:.1f}s")


def _a_hosts_commands_wait_for_its_gateway_and_no_other_gateway_takes_them(scene: Fleet) -> None:
    system, before = scene.system, scene.pids()
    alpha_group, beta_group = trading_group("alpha"), trading_group("beta")
    wait_for(lambda: _waiting(scene.p) == {alpha_group: (0, 0), beta_group: (0, 0)}, 30, "every start handled")

    # when: beta's gateway is stopped (SIGTERM: its bots keep running), and seen down
    stopped_at = time.monotonic()
    system.stop_gateway("beta")
    wait_for(lambda: _host_status(scene.admin)["beta"] == "down", DOWN_AFTER_SECONDS + 30, "beta to be seen down")
    seen_down = time.monotonic() - stopped_at
    asked_at = time.time()
    # and a restart of q's bot on beta, and an emergency stop of p's bots (one on each host), are sent
    restarted = scene.q.post(f"/api/v1/bots/{scene.q_beta.pk}/restart")
    emergency = scene.p.post("/api/v1/emergency/stop-all", {}, format="json")

    # then: both accepted, saying they wait for beta
    assert restarted.status_code == 202, restarted.content
    assert restarted.json()["status"] == "restart_command_sent"
    assert (restarted.json()["host"], restarted.json()["waiting_for_host"]) == ("beta", True)
    assert emergency.status_code == 202, emergency.content
    assert emergency.json()["hosts"] == [{"host": "alpha", "answering": True}, {"host": "beta", "answering": False}]
    assert emergency.json()["hosts_not_answering"] == ["beta"]
    # alpha stops its own bot of the emergency and reads both commands in its group; they wait in beta's
    wait_for(lambda: system.stopped([scene.p_alpha]), 60, "alpha to stop its bot of the emergency")
    wait_for(lambda: _waiting(scene.p)[alpha_group] == (0, 0), 30, "alpha's group to have handled both commands")
    assert _waiting(scene.p)[beta_group] == (2, 0)
    # and beta's bots were not touched: the very processes run on
    untouched = records([scene.p_beta, scene.q_alpha, scene.q_beta])
    assert {bot.pk: bot.pid for bot in untouched} == {bot.pk: before[bot.pk] for bot in untouched}
    assert all(alive(bot.pid) for bot in untouched) and _starts(scene.q_beta, since=asked_at) == 0

    # when: beta's gateway comes back
    since = time.monotonic()
    system.start_gateway("beta")

    # then: what waited is carried out on beta: its bot restarted (a new process there), p's stopped
    def restarted_on_beta() -> bool:
        return records([scene.q_beta])[0].pid != before[scene.q_beta.pk] and not system.untrue(
            [scene.q_beta], running=True
        )

    wait_for(restarted_on_beta, 90, "beta's bot restarted by beta's gateway")
    took = time.monotonic() - since
    wait_for(lambda: system.stopped([scene.p_alpha, scene.p_beta]), 60, "p's bots stopped on both hosts")
    wait_for(lambda: _waiting(scene.p)[beta_group] == (0, 0), 30, "beta's group to have handled what waited")
    assert _starts(scene.q_beta, since=asked_at, reason="restart") == 1
    # alpha's running bot never noticed: its process is the one it had
    assert system.untrue([scene.q_alpha], running=True) == []
    assert records([scene.q_alpha])[0].pid == before[scene.q_alpha.pk]
    print(f"2. beta's gateway stopped: seen down after {seen_down:.1f}s (down after {DOWN_AFTER_SECONDS:.0f}s); "
          f"its 2 commands waited in its group, alpha's took none; beta back: carried out in {took:.1f}s")  # fmt: skip


def _commands_sent_while_redis_is_frozen_reach_both_hosts_once_when_it_returns(scene: Fleet, redis_server: Any) -> None:
    system = scene.system
    # given: q's bots running (one on each host), p's stopped (one on each host)
    to_restart, to_stop, to_start = scene.q_alpha, scene.q_beta, [scene.p_alpha, scene.p_beta]
    before = {bot.pk: bot for bot in records(scene.bots)}
    assert system.untrue([to_restart, to_stop], running=True) == [] and system.stopped(to_start)

    # when: Redis is frozen (SIGSTOP) for 20 s, and a restart (alpha), a stop (beta) and two starts (one each) are sent
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    frozen_at, frozen_wall = time.monotonic(), time.time()
    answers = []
    try:
        for api, bot, command in ((scene.q, to_restart, "restart"), (scene.q, to_stop, "stop"),
                                  (scene.p, to_start[0], "start"), (scene.p, to_start[1], "start")):  # fmt: skip
            asked = time.monotonic()
            response = api.post(f"/api/v1/bots/{bot.pk}/{command}")
            answers.append((response.status_code, response.json().get("host"), time.monotonic() - asked))
        time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
        untouched = {bot.pk: (bot.status, bot.pid) for bot in records(scene.bots)}
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    since = time.monotonic()

    # then: each accepted at once, for its bot's host, and nothing done while Redis was frozen
    assert [(status, host) for status, host, _ in answers] == [(202, "alpha"), (202, "beta"), (202, "alpha"),
                                                               (202, "beta")]  # fmt: skip
    assert untouched == {bot.pk: (bot.status, bot.pid) for bot in before.values()}
    # and once it is back, each is carried out by its host's gateway
    running = [to_restart, *to_start]
    took = system.time_to_truth(running, running=True, timeout=90, since=since)
    wait_for(lambda: system.stopped([to_stop]), 60, "beta's bot to stop")
    assert records([to_restart])[0].pid != before[to_restart.pk].pid
    # once each: no second start or restart (a duplicate would have been carried out by now), one process
    # per bot, no crash-restart counted
    time.sleep(SNAPSHOT_SECONDS * 2)
    assert [_starts(bot, since=frozen_wall) for bot in (to_restart, to_stop, *to_start)] == [1, 0, 1, 1]
    assert _starts(to_restart, since=frozen_wall, reason="restart") == 1
    assert system.untrue(running, running=True) == [] and system.stopped([to_stop])
    assert [(bot.host, bot.restart_count) for bot in records(running)] == [("alpha", 0), ("beta", 0), ("alpha", 0)]
    print(f"3. Redis frozen {FREEZE_SECONDS} s while 4 commands for two hosts were sent (answered 202 in "
          f"{', '.join(f'{seconds:.2f}' for *_, seconds in answers)} s): each carried out once by its host, "
          f"records true {took:.1f}s after SIGCONT")  # fmt: skip


def _an_emergency_stop_both_hosts_answer_leaves_no_process_on_either(scene: Fleet) -> None:
    system = scene.system
    # when: the emergency stop of every bot (two running on alpha, one on beta)
    since = time.monotonic()
    stopped = scene.admin.post("/api/v1/emergency/stop-all", {"force_exit": True}, format="json")

    # then: both hosts answer it, and no bot process is left on either
    assert stopped.status_code == 202, stopped.content
    assert stopped.json()["hosts"] == [{"host": name, "answering": True} for name in HOSTS]
    assert stopped.json()["hosts_not_answering"] == []
    wait_for(lambda: not system.bot_processes(), 60, "no bot process left on either host")
    gone = time.monotonic() - since
    wait_for(lambda: system.stopped(scene.bots), 60, "every bot recorded stopped")
    print(f"4. emergency stop-all: no process on either host {gone:.1f}s after it, every bot recorded stopped "
          f"after {time.monotonic() - since:.1f}s")  # fmt: skip
