"""The gateway's TradeCollector without a running bot: what it does when a bot does not answer."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bots.commands import deleted_report, trade_report
from bots.gateway.trades import TradeCollector
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


def test_a_bot_that_does_not_answer_is_logged_once_a_minute_and_never_with_its_password(user, caplog):
    # given: a bot whose API port has nothing listening (it is not running)
    bot = make_bot(owner=user)
    sent: list[dict[str, Any]] = []
    collector = TradeCollector(publish=sent.append, poll_seconds=0, timeout=0.5)

    # when: two rounds fail
    with caplog.at_level(logging.INFO, logger="bots.gateway.trades"):
        assert collector.collect([bot.pk]) == {}
        assert collector.collect([bot.pk]) == {}

    # then
    records = [record for record in caplog.records if record.name == "bots.gateway.trades"]
    assert len(records) == 1
    assert f"trades of bot {bot.pk} ({bot.name}) not collected" in records[0].getMessage()
    assert bot.api_password not in caplog.text and bot.api_username not in caplog.text
    assert sent == [] and collector.bots == {}  # nothing published, nothing remembered


def test_a_report_keeps_an_open_trades_live_profit_out_of_the_record():
    status_answer = {"trade_id": 4, "pair": "ETH/USDT", "is_open": True, "is_short": False, "amount": 0.04,
                     "stake_amount": 99.0, "open_rate": 2475.5, "open_timestamp": 1_760_000_000_000,
                     "close_rate": None, "close_timestamp": None, "profit_abs": -0.31, "profit_ratio": -0.003,
                     "current_rate": 2468.0, "exit_reason": None}  # fmt: skip

    report = trade_report(status_answer)

    assert report["profit_abs"] is None and report["profit_ratio"] is None and report["exit_reason"] == ""
    assert report["raw"] is status_answer  # carried whole
    assert deleted_report(4) == {"trade_id": 4, "deleted": True}
