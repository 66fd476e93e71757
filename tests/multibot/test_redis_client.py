"""request_redis(): the short-timeout client of a request's path, and its skip after a failure."""

from __future__ import annotations

import time

import pytest
import redis

from multibot.embedded_redis import EmbeddedRedis
from multibot.redis_client import RedisSkipped, redis_client, request_redis


def _ping() -> bool:
    with request_redis() as client:
        return bool(client.ping())


def test_after_a_failure_redis_is_skipped_until_the_skip_ends(settings, tmp_path):
    # given: a Redis that is not running yet
    server = EmbeddedRedis(tmp_path / "redis")
    settings.REDIS_URL = server.url
    settings.REDIS_REQUEST = {**settings.REDIS_REQUEST, "skip_seconds": 1}
    try:
        with pytest.raises(redis.ConnectionError) as refused:
            _ping()
        # when: it comes up within the skip
        server.start()
        with pytest.raises(RedisSkipped) as skipped:
            _ping()
        still_answers = redis_client().ping()  # the waiting client is not skipped
        time.sleep(1)
        # then: asked again once the skip ends
        answered = _ping()
    finally:
        server.stop()
    assert not isinstance(refused.value, RedisSkipped)
    assert (skipped.value.error, str(skipped.value)) == ("ConnectionError", "skipped: failed 0s ago")
    assert still_answers and answered


def test_a_failure_of_one_redis_skips_only_that_one(settings, tmp_path):
    # given: the suite's Redis, and another that is down
    good_url = settings.REDIS_URL
    settings.REDIS_URL = EmbeddedRedis(tmp_path / "redis").url
    with pytest.raises(redis.ConnectionError):
        _ping()
    # when
    settings.REDIS_URL = good_url
    # then
    assert _ping()


def test_an_error_outside_redis_is_no_failure_of_redis():
    # given: a block that fails for a reason of its own
    with pytest.raises(ValueError), request_redis():
        raise ValueError("not Redis")
    # then: Redis is still asked
    assert _ping()
