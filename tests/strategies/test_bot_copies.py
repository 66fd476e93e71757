"""A bot runs its own copy of the exact version it started with; a later upload changes no running bot."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from audit.services import Actor
from bots import workspace
from bots.ftclient import client_for
from bots.services import bot_create
from bots.workspace import running_strategy_version
from strategies.library import strategy_file
from strategies.services import strategy_upload
from tests.factories import make_bot, store_replay_markets
from tests.strategies.conftest import strategy_text
from tests.support.market import PAIRS, store_history
from tests.support.processes import free_port
from tests.support.replay import freqtrade_bot, replay_exchange

pytestmark = pytest.mark.django_db

VERSION = '\n    def version(self) -> str:\n        return "{}"\n'


def versioned(label: str) -> str:
    return strategy_text(body=VERSION.format(label))


def store(user, text: str, parameters: dict | None = None) -> str:
    version, _ = strategy_upload(
        actor=Actor(user=user, ip_address="127.0.0.1"), owner=user, filename="MyStrategy.py", data=text.encode(),
        parameters=None if parameters is None else json.dumps(parameters).encode(),
    )  # fmt: skip
    return version.sha256


def test_a_bot_gets_a_read_only_copy_of_the_current_version_and_its_parameter_file(user):
    parameters = {"params": {"buy": {"buy_rsi": 22}}}
    sha256 = store(user, versioned("v1"), parameters)
    bot = make_bot(owner=user, strategy_name="MyStrategy")

    space = workspace.prepare(bot)

    copy = space.strategies / "MyStrategy.py"
    assert copy.read_text() == versioned("v1")
    assert copy.stat().st_mode & 0o777 == 0o400
    assert json.loads((space.strategies / "MyStrategy.json").read_text()) == {"strategy_name": "MyStrategy",
                                                                                **parameters}  # fmt: skip
    assert running_strategy_version(bot.pk) == sha256 == hashlib.sha256(versioned("v1").encode()).hexdigest()


def test_a_later_upload_leaves_a_prepared_bots_copy_and_the_next_start_takes_the_new_version(user):
    first = store(user, versioned("v1"))
    bot = make_bot(owner=user, strategy_name="MyStrategy")
    space = workspace.prepare(bot)

    second = store(user, versioned("v2"))

    assert (space.strategies / "MyStrategy.py").read_text() == versioned("v1")
    assert running_strategy_version(bot.pk) == first
    workspace.prepare(bot)  # a start the user asks for
    assert (space.strategies / "MyStrategy.py").read_text() == versioned("v2")
    assert running_strategy_version(bot.pk) == second
    assert sorted(path.name for path in space.strategies.iterdir()) == ["MyStrategy.py"]


def test_another_users_strategy_is_not_there_for_a_bot(user, other_user):
    store(user, versioned("v1"))

    assert strategy_file("MyStrategy", owner=user) is not None
    assert strategy_file("MyStrategy", owner=other_user) is None
    bot = make_bot(owner=other_user, strategy_name="MyStrategy")
    with pytest.raises(workspace.WorkspaceError):
        workspace.prepare(bot)


def test_starting_a_bot_on_another_users_strategy_is_refused(user, other_user):
    from tests.factories import client_for as api_client_for

    store(user, versioned("v1"))
    bot = make_bot(owner=other_user, strategy_name="MyStrategy")

    response = api_client_for(other_user).post(f"/api/v1/bots/{bot.pk}/start")

    assert response.status_code == 409
    assert "not in the strategy library" in response.json()["detail"]


@pytest.mark.slow
def test_a_running_freqtrade_bot_keeps_the_version_it_started_with_after_an_upload(tmp_path: Path, settings, user):
    # given: a real dry-run bot on the replay exchange, started on version v1
    store_history(tmp_path / "data" / "replay")
    store_replay_markets(*PAIRS)
    store(user, versioned("v1"))
    with replay_exchange(tmp_path) as url:
        settings.REPLAY_EXCHANGE_URL = url
        settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "data"}
        port = free_port()
        settings.BOTS = {**settings.BOTS, "api_port_first": port, "api_port_last": port}
        bot = bot_create(
            actor=Actor(user=user, ip_address="127.0.0.1"), owner=user, name="Pinned", strategy_name="MyStrategy",
            exchange="replay", stake_currency="USDT", stake_amount=10, pair_whitelist=list(PAIRS),
        )  # fmt: skip
        space = workspace.prepare(bot)
        with freqtrade_bot(space, bot.api_port), client_for(bot, timeout=10) as client:
            before = client.show_config()["strategy_version"]

            # when: a new version is uploaded while it runs
            store(user, versioned("v2"))

            # then: the running bot, and the copy a crash restart would load, are still v1
            after = client.show_config()["strategy_version"]
            assert (space.strategies / "MyStrategy.py").read_text() == versioned("v1")

    assert (before, after) == ("v1", "v1")


def test_parameters_applied_to_a_strategy_are_a_new_version_of_its_code_that_a_bot_starts_with(user):
    from strategies.selectors import strategy_get
    from strategies.services import strategy_parameters_apply

    sha256 = store(user, versioned("v1"))
    bot = make_bot(owner=user, strategy_name="MyStrategy")
    best = {"params": {"buy": {"buy_rsi": 17}}}

    version, created = strategy_parameters_apply(
        actor=Actor(user=user, ip_address=None), strategy=strategy_get(user=user, name="MyStrategy"), parameters=best
    )

    assert created and version.sha256 == sha256
    assert version.parameters == {"strategy_name": "MyStrategy", **best}
    space = workspace.prepare(bot)
    assert json.loads((space.strategies / "MyStrategy.json").read_text())["params"] == best["params"]
