"""Fixtures of the bot tests that run real processes: the replay exchange; one real freqtrade dry-run bot per
module for the pass-through tests; whole systems (gateways, listeners) for the fault and host tests.

The pass-through tests' bot:

The bot was started from ``workspace.prepare`` of a bot made by ``make_bot`` in a transaction that
was then rolled back; a test's own bot row (owned by that test's user) carries the port and
credentials of that process, as the gateway would have left it (``BotProcess.credentials_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from bots import workspace
from strategies.library import install_builtin_strategies, library_dir
from tests.factories import make_bot, make_user
from tests.support.fleet import System
from tests.support.freqtrade import ALWAYS_IN
from tests.support.market import store_history
from tests.support.processes import free_port
from tests.support.replay import freqtrade_bot, replay_exchange
from tests.support.running_bot import BotProcess, settings_for


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's MULTIBOT_HOME for market data and bot workspaces (no other test's gateway looks here)."""
    return tmp_path_factory.mktemp("passthrough-home")


@pytest.fixture(scope="module")
def replay_url(home: Path) -> Iterator[str]:
    store_history(home / "data" / "replay")
    with replay_exchange(home) as url:
        yield url


@pytest.fixture(scope="module")
def bot_process(home: Path, replay_url: str, django_db_setup: Any, django_db_blocker: Any) -> Iterator[BotProcess]:
    # A port the system just handed out, not the range's lowest: a bot started elsewhere on this machine
    # meanwhile (freqtrade takes seconds to listen) would take the lowest too, and answer in this one's place.
    port = free_port()
    one_port = {**settings.BOTS, "api_port_first": port, "api_port_last": port}
    # The settings fixture is per test: this module-wide process uses override_settings instead.
    with (
        override_settings(**settings_for(home, replay_url), BOTS=one_port),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        install_builtin_strategies()
        bot = make_bot(owner=make_user(), timeframe="5m")
        prepared = workspace.prepare(bot)
        running = BotProcess(**BotProcess.credentials_of(bot))
        transaction.set_rollback(True)
    with freqtrade_bot(prepared, running.api_port):
        yield running


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
