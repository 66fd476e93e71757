"""Fixtures of the bot tests that run real processes: the replay exchange, the gateways and listeners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strategies.library import library_dir
from tests.support.fleet import System
from tests.support.freqtrade import ALWAYS_IN
from tests.support.market import store_history
from tests.support.replay import replay_exchange


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The replay exchange on candles of its own, one per test module that starts real bots."""
    home = tmp_path_factory.mktemp("replay")
    store_history(home / "data" / "replay")
    with replay_exchange(home) as url:
        yield url


@pytest.fixture
def systems(replay_url: str, committed_db: None, tmp_path: Path) -> Iterator[Callable[..., System]]:
    """Starts a System (tests/support/fleet.py) with the AlwaysIn strategy in the library; each one closed
    after the test, its bots killed."""
    (library_dir() / "always_in.py").write_text(ALWAYS_IN)
    started: list[System] = []

    def start(**options: Any) -> System:
        started.append(System(replay_url, tmp_path, **options))
        return started[-1]

    try:
        yield start
    finally:
        for system in started:
            system.close()
