"""A frozen Redis (SIGSTOP) under a live server: reads keep their normal time, health says degraded at once.

The server is a real uvicorn on its own embedded Redis and the committed test database. SIGSTOP is
the outage that hurts most: the kernel still accepts connections, so nothing is refused and every
call waits for its timeout; request_redis() is what keeps that wait off a read's path.
"""

from __future__ import annotations

import gc
import os
import signal
import statistics
import time

import httpx
import pytest
from django.conf import settings

from multibot.embedded_redis import EmbeddedRedis
from tests import factories
from tests.support.processes import database_url, server_env, uvicorn_server

FREEZE_SECONDS = 20
READ_EVERY, HEALTH_EVERY = 0.25, 1.0
# The must-show: a read during the freeze answers within this.
READ_BUDGET_MS = 200
RECOVERY_SECONDS = 10


def _timed(call) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, (time.perf_counter() - started) * 1000


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


@pytest.mark.slow
def test_a_frozen_redis_slows_no_read_and_health_says_degraded_at_once(committed_db, tmp_path):
    # given: a live server on its own Redis, a user logged in who owns a bot
    home = tmp_path / "home"
    redis_server = EmbeddedRedis(home / "redis")
    redis_server.start()
    user = factories.make_user()
    bot = factories.make_bot(owner=user, name="alpha")
    env = server_env(
        DJANGO_SETTINGS_MODULE="tests.settings", MULTIBOT_HOME=str(home), DATABASE_URL=database_url(),
        SECRET_KEY=settings.SECRET_KEY,  # the bot made here must decrypt there
    )  # fmt: skip
    reads: list[tuple[float, int, float]] = []  # (since the freeze s, status, ms)
    checks: list[tuple[float, int, str, float]] = []  # (since the freeze s, status, overall, ms)
    server_log = open(tmp_path / "server.log", "w")
    try:
        with uvicorn_server(env, output=server_log) as base, httpx.Client(base_url=base, timeout=30) as http:
            login = http.post(
                "/api/v1/auth/login/json", json={"username": user.username, "password": factories.PASSWORD}
            )
            assert login.status_code == 200, login.text
            http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            assert [item["id"] for item in http.get("/api/v1/bots/").json()] == [bot.pk]
            assert http.get("/api/v1/monitoring/health").json()["overall_status"] == "healthy"

            # when: Redis freezes for 20 s, reads every 0.25 s and health every second
            frozen_at = time.monotonic()
            os.kill(redis_server.process.pid, signal.SIGSTOP)
            # This process's own full collections (up to 0.7 s: pytest's heap) are not the server's time.
            gc.disable()
            try:
                next_health = frozen_at
                while (since := time.monotonic() - frozen_at) < FREEZE_SECONDS:
                    response, ms = _timed(lambda: http.get("/api/v1/bots/"))
                    reads.append((since, response.status_code, ms))
                    if time.monotonic() >= next_health:
                        next_health += HEALTH_EVERY
                        since = time.monotonic() - frozen_at
                        response, ms = _timed(lambda: http.get("/api/v1/monitoring/health"))
                        checks.append((since, response.status_code, response.json()["overall_status"], ms))
                    time.sleep(max(0.0, READ_EVERY - ms / 1000))
            finally:
                os.kill(redis_server.process.pid, signal.SIGCONT)
                gc.enable()
            thawed_at = time.monotonic()
            while time.monotonic() - thawed_at < RECOVERY_SECONDS:
                if http.get("/api/v1/monitoring/health").json()["overall_status"] == "healthy":
                    break
                time.sleep(0.25)
            healthy_after = time.monotonic() - thawed_at
    finally:
        redis_server.stop()
        server_log.close()

    read_ms = [ms for _, _, ms in reads]
    health_ms = [ms for *_, ms in checks]
    probes = [f"{since:.1f}s:{ms:.0f}ms" for since, _, ms in reads if ms >= 50]
    print(f"\nreads during the freeze: {len(reads)}, max {max(read_ms):.0f} ms, p95 {_p95(read_ms):.0f} ms, "
          f"median {statistics.median(read_ms):.0f} ms; over 50 ms: {', '.join(probes)}")  # fmt: skip
    print(f"health during the freeze: {len(checks)}, max {max(health_ms):.0f} ms, first degraded "
          f"{checks[0][0]:.2f} s after the freeze")  # fmt: skip
    print(f"healthy again {healthy_after:.2f} s after SIGCONT")
    # then: every read answered, in its normal time
    assert {status for _, status, _ in reads} == {200}
    assert max(read_ms) < READ_BUDGET_MS, [read for read in reads if read[2] >= READ_BUDGET_MS]
    # health answered 200 (no 5xx for a load balancer) and degraded from its first call on
    assert [(status, overall) for _, status, overall, _ in checks] == [(200, "degraded")] * len(checks)
    assert len(checks) >= FREEZE_SECONDS - 1
    # and healthy again soon after Redis is
    assert healthy_after < RECOVERY_SECONDS
