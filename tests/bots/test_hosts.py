"""Bot hosts: each gateway registers its host with its capacity in its heartbeat; superusers list them."""

from __future__ import annotations

import time

import pytest

from bots.commands import HostCapacity, Report, build_bot_beat, build_gateway_heartbeat
from bots.gateway.service import Gateway
from bots.listeners import handle_gateway_heartbeat
from bots.models import Bot, Host
from streams.bus import Envelope
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


def _capacity(slots: int = 4, available: int = 2048) -> HostCapacity:
    return HostCapacity(bot_slots=slots, memory_total_mb=8192, memory_available_mb=available, cpus=2,
                        gateway_started_at=time.time() - 60)  # fmt: skip


def _beat(host: str, at: float, capacity: HostCapacity, *beats: object) -> None:
    payload = build_gateway_heartbeat(bots=list(beats), at=at, host=host, capacity=capacity)  # type: ignore[arg-type]
    handle_gateway_heartbeat(Envelope(type=Report.GATEWAY_HEARTBEAT, payload=dict(payload)))


def test_a_gateways_heartbeat_carries_its_hosts_capacity(settings):
    settings.GATEWAY = {**settings.GATEWAY, "bot_slots": 7, "snapshot_seconds": 0}
    gateway = Gateway(host="alpha")
    try:
        beat = gateway.heartbeat()
    finally:
        gateway.supervisor.shutdown()
    assert beat is not None and beat["host"] == "alpha"
    assert beat["capacity"]["bot_slots"] == 7 and beat["capacity"]["cpus"] >= 1
    assert 0 < beat["capacity"]["memory_available_mb"] <= beat["capacity"]["memory_total_mb"]


def test_the_first_heartbeat_registers_the_host_and_later_ones_keep_it_current_never_backwards():
    now = time.time()
    _beat("alpha", now, _capacity(available=2048))
    _beat("alpha", now + 3, _capacity(available=1024))
    _beat("alpha", now + 1, _capacity(available=4096))  # late: older than what is held
    (host,) = Host.objects.all()
    assert (host.name, host.bot_slots, host.memory_available_mb) == ("alpha", 4, 1024)
    assert host.last_seen_at.timestamp() == pytest.approx(now + 3, abs=1e-3)


def test_superusers_list_the_hosts_with_their_bots_capacity_and_health(user, user_api, admin_api, settings):
    # given: alpha beats now with two bots, one running; beta beat long ago and holds one bot
    running, stopped, elsewhere = make_bot(owner=user), make_bot(owner=user), make_bot(owner=user)
    now = time.time()
    Bot.objects.filter(pk=running.pk).update(host="alpha", status="running", pid=10, status_at=now - 1)
    Bot.objects.filter(pk=stopped.pk).update(host="alpha")
    Bot.objects.filter(pk=elsewhere.pk).update(host="beta", status="running", pid=11, status_at=now - 100)
    _beat("alpha", now, _capacity(slots=4), build_bot_beat(bot_id=running.pk, pid=10, status="running"))
    _beat("beta", now - 100, _capacity(slots=2))

    # when
    listed = admin_api.get("/api/v1/hosts/")
    refused = user_api.get("/api/v1/hosts/")
    health = {c["name"]: c for c in admin_api.get("/api/v1/monitoring/health").json()["component_health"]}

    # then
    assert refused.status_code == 403
    assert listed.status_code == 200 and listed.json()["total"] == 2
    alpha, beta = listed.json()["hosts"]
    assert (alpha["name"], alpha["status"], beta["name"], beta["status"]) == ("alpha", "live", "beta", "down")
    assert alpha["capacity"]["bot_slots"] == 4 and alpha["capacity"]["free_slots"] == 3  # the stopped bot holds none
    assert [bot["id"] for bot in alpha["bots"]] == [running.pk, stopped.pk]
    assert [bot["id"] for bot in beta["bots"]] == [elsewhere.pk]
    assert health["hosts"]["status"] == "degraded"
    assert health["hosts"]["details"]["hosts"]["beta"] == {"status": "down", "bots": 1, "free_slots": 1}
