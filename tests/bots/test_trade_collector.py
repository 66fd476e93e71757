"""The gateway's TradeCollector without a running bot: what it does when a bot does not answer."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bots.commands import balance_report, build_trade_update, deleted_report, read_trade_update, trade_report
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


def test_a_balance_report_takes_freqtrades_figures_and_the_open_trades_prices_and_reads_back_the_same():
    # /balance and /status as freqtrade answers them (trimmed)
    balance = {"stake": "USDT", "total": 1002.75, "starting_capital": 990.0, "currencies": [
        {"currency": "USDT", "free": 901.5, "balance": 901.5, "used": 0.0, "is_position": False},
        {"currency": "BTC", "free": 0.002, "balance": 0.002, "used": 0.0, "est_stake": 101.25, "is_position": False},
    ]}  # fmt: skip
    status = [{"trade_id": 3, "is_open": True, "current_rate": 50_625.0, "profit_abs": 1.2, "profit_ratio": 0.012},
              {"trade_id": 4, "is_open": True, "current_rate": float("nan"), "profit_abs": float("nan")}]  # fmt: skip

    report = balance_report(balance, status)
    update = build_trade_update(bot_id=7, trades=[], at=5.0, host="h", balance=report)

    assert (report["total"], report["free"], report["starting_capital"]) == (1002.75, 901.5, 990.0)
    assert report["open_trades"][0] == {"trade_id": 3, "current_rate": 50_625.0, "profit_abs": 1.2,
                                        "profit_ratio": 0.012}  # fmt: skip
    assert report["open_trades"][1]["current_rate"] is None  # freqtrade's NaN: no price, not a number
    assert read_trade_update(json.loads(json.dumps(update))) == update
    # an update from a gateway that reads no balance reads as before
    assert "balance" not in read_trade_update({"bot_id": 7, "trades": [], "at": 5.0, "host": "h"})
