"""A bot created the way the API document shows (no pairs), with an unlimited stake, really starts.

One real freqtrade dry-run process on the real replay exchange, from the config ``workspace.prepare``
renders for it: its whitelist is the replay's stored markets of its stake currency.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.services import Actor
from bots import workspace
from bots.ftclient import client_for
from bots.services import bot_create
from strategies.library import install_builtin_strategies
from tests.factories import store_replay_markets
from tests.support.market import PAIRS, store_history
from tests.support.processes import free_port
from tests.support.replay import freqtrade_bot, replay_exchange

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_a_replay_bot_created_without_pairs_and_an_unlimited_stake_starts_on_the_stored_markets(
    tmp_path: Path, settings, user
):
    # given: a replay exchange serving stored candles, their markets known, and a bot that lists no pairs
    store_history(tmp_path / "data" / "replay")
    store_replay_markets(*PAIRS)
    with replay_exchange(tmp_path) as url:
        settings.HOME, settings.REPLAY_EXCHANGE_URL = tmp_path, url
        settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "data"}
        # A port of the OS's choosing, not the range's lowest: other test runs on this host allocate those too.
        port = free_port()
        settings.BOTS = {**settings.BOTS, "api_port_first": port, "api_port_last": port}
        install_builtin_strategies()
        bot = bot_create(
            actor=Actor(user=user, ip_address="127.0.0.1"), owner=user, name="NoPairs",
            strategy_name="SampleStrategy", exchange="replay", stake_currency="USDT", stake_amount=None,
        )  # fmt: skip
        assert bot.pair_whitelist == []

        # when
        with freqtrade_bot(workspace.prepare(bot), bot.api_port), client_for(bot, timeout=10) as client:
            whitelist = client.request("GET", "/api/v1/whitelist").json()
            config = client.show_config()

    # then
    assert sorted(whitelist["whitelist"]) == sorted(PAIRS)
    assert whitelist["method"] == ["StaticPairList"]  # the stored markets, listed at start
    assert config["stake_amount"] == "unlimited"
    assert config["state"] == "running"
