"""Fixtures of the stream tests: a worker in this process, on the data commands stream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.bus import ensure_groups
from streams.catalog import DATA_COMMANDS
from streams.worker import HandlerRegistry, StreamWorker


@pytest.fixture
def registry() -> HandlerRegistry:
    return HandlerRegistry()


@pytest.fixture
def worker(registry: HandlerRegistry) -> Iterator[StreamWorker]:
    """A worker of ``registry`` on DATA_COMMANDS with a dead-letter bound of one: any delivery counted
    against an entry dead-letters it, so each test sees its verdict at once."""
    ensure_groups([DATA_COMMANDS])
    worker = StreamWorker(registry=registry, group="data_consumers", consumer="w1", block_ms=0, max_deliveries=1)
    worker.prepare()
    yield worker
    worker.close()
