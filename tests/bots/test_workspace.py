"""A bot's rendered freqtrade config: its stake, its pairs, and the defaults when it lists none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bots import workspace
from bots.ftconfig import UNLIMITED_STAKE, VOLUME_PAIRLIST
from strategies.library import install_builtin_strategies
from tests.factories import make_bot, store_replay_markets

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _strategies() -> None:
    install_builtin_strategies()


def rendered(bot: Any) -> dict[str, Any]:
    return json.loads(workspace.prepare(bot).config.read_text())


def test_an_unlimited_stake_is_rendered_as_freqtrades_unlimited(user):
    bot = make_bot(owner=user, stake_amount=None)

    config = rendered(bot)

    assert config["stake_amount"] == UNLIMITED_STAKE == "unlimited"


def test_a_fixed_stake_is_rendered_as_a_number(user):
    config = rendered(make_bot(owner=user, stake_amount=125))

    assert config["stake_amount"] == 125.0


def test_a_replay_bot_without_pairs_trades_the_stored_markets_of_its_stake_currency(user):
    # given: markets in two quote currencies, and a bot listing none
    store_replay_markets("ETH/USDT", "BTC/USDT", "BTC/EUR")
    bot = make_bot(owner=user, pair_whitelist=[])

    # when
    config = rendered(bot)

    # then
    assert config["exchange"]["pair_whitelist"] == ["BTC/USDT", "ETH/USDT"]
    assert config["pairlists"] == [{"method": "StaticPairList"}]


def test_a_replay_bot_without_pairs_picks_up_markets_stored_after_it_was_created(user):
    bot = make_bot(owner=user, pair_whitelist=[])
    store_replay_markets("SOL/USDT")

    assert rendered(bot)["exchange"]["pair_whitelist"] == ["SOL/USDT"]


def test_a_replay_bot_without_pairs_and_no_market_of_its_currency_cannot_start_and_says_why(user):
    store_replay_markets("BTC/EUR")
    bot = make_bot(owner=user, pair_whitelist=[])

    with pytest.raises(workspace.WorkspaceError) as refused:
        workspace.prepare(bot)

    assert "no pairs" in str(refused.value) and "USDT" in str(refused.value)


def test_listed_pairs_are_rendered_as_they_are(user):
    store_replay_markets("ETH/USDT", "BTC/USDT")
    config = rendered(make_bot(owner=user, pair_whitelist=["ETH/USDT"]))

    assert config["exchange"]["pair_whitelist"] == ["ETH/USDT"]
    assert config["pairlists"] == [{"method": "StaticPairList"}]


def test_a_bot_on_a_real_exchange_without_pairs_trades_its_most_traded_pairs(user):
    bot = make_bot(owner=user, exchange="binance", pair_whitelist=[])

    config = rendered(bot)

    assert config["exchange"]["pair_whitelist"] == []
    assert config["pairlists"] == [VOLUME_PAIRLIST]
    assert VOLUME_PAIRLIST["method"] == "VolumePairList"


@pytest.mark.parametrize(
    "fields",
    [
        {"exchange": "binance", "pair_whitelist": []},
        {"exchange": "replay", "pair_whitelist": []},
        {"exchange": "replay", "pair_whitelist": ["BTC/USDT"], "stake_amount": None},
    ],
)
def test_freqtrade_accepts_the_config_of_a_bot_without_pairs_or_with_an_unlimited_stake(user, fields):
    from freqtrade.configuration.config_validation import validate_config_consistency
    from freqtrade.enums import RunMode

    # given
    store_replay_markets("BTC/USDT")
    config = rendered(make_bot(owner=user, **fields))
    # What freqtrade adds before it checks: the run mode, the strategy's settings, its own defaults.
    config.update(runmode=RunMode.DRY_RUN, stoploss=-0.1, minimal_roi={"0": 0.1}, last_stake_amount_min_ratio=0.5,
                  dataformat_trades="feather")  # fmt: skip

    # then: freqtrade's own checks at start (StaticPairList needs pairs; the schema) pass
    validate_config_consistency(config)


def test_a_gateway_on_another_machine_fetches_the_strategy_code_and_says_why_when_it_cannot(user, settings):
    # given: the bot's strategy version is stored on the manager's disk, not on this host's
    from strategies.library import strategy_code
    from tests.support.processes import free_port

    bot = make_bot(owner=user, strategy_name="SampleStrategy")
    workspace.remove(bot.pk)  # an earlier test's bot of the same id
    store_replay_markets()
    code = strategy_code("SampleStrategy", owner=user)
    assert code is not None and code.sha256
    kept = code.source.read_bytes()
    code.source.chmod(0o600)
    code.source.unlink()
    settings.MANAGER = {**settings.MANAGER, "url": f"http://127.0.0.1:{free_port()}"}  # nobody answers
    try:
        # when / then: the start's preparation fails with the reason, and writes no config
        with pytest.raises(workspace.WorkspaceError, match="could not be fetched from the manager"):
            workspace.prepare(bot)
        assert not workspace.workspace_for(bot.pk).config.exists()
    finally:
        code.source.write_bytes(kept)
        code.source.chmod(0o400)
