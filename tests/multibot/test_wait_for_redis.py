"""A process started together with Redis (`make run`) waits for it before its first use."""

from __future__ import annotations

import threading

from multibot.embedded_redis import EmbeddedRedis
from multibot.redis_client import redis_url_for_display, wait_for_redis
from tests.support.processes import wait_for


def test_it_waits_for_a_redis_not_up_yet_and_says_so_without_the_password(tmp_path, settings):
    # given: a Redis that is not running yet
    server = EmbeddedRedis(tmp_path / "redis")
    settings.REDIS_URL = server.url
    lines: list[str] = []
    waited: list[float] = []
    waiter = threading.Thread(
        target=lambda: waited.append(wait_for_redis(log=lines.append, interval=0.05, log_every=0.3))
    )
    waiter.start()
    try:
        wait_for(lambda: len(lines) >= 2, 10, "the wait to be logged again")
        assert waiter.is_alive()
        # when
        server.start()
        waiter.join(15)
        # then
        assert not waiter.is_alive() and waited[0] > 0
    finally:
        server.stop()
    assert lines[0].startswith(f"waiting for Redis at redis://127.0.0.1:{server.port}/0: ")
    assert "(waited" not in lines[0] and "(waited" in lines[1]
    assert not any(server.password in line for line in lines)


def test_a_redis_url_is_shown_without_its_password():
    assert redis_url_for_display("redis://:secret@127.0.0.1:6379/5") == "redis://127.0.0.1:6379/5"
    assert redis_url_for_display("rediss://app:secret@cache.example:6380/0") == "rediss://app@cache.example:6380/0"
    assert redis_url_for_display("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
