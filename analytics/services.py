"""Every write to collected trades and balances: the gateway's ``trade_update`` reports become rows and bot totals."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum

from analytics.models import BotBalance, Trade
from analytics.notifications import Event, trade_notification
from bots.commands import BalanceReport, DeletedTrade, TradeReport
from bots.models import Bot

# A trade seen for the first time is news only when its entry or exit is this recent: a bot's
# whole history collected at once (a restored database) must not replay as notifications.
NEWS_WINDOW = timedelta(hours=24)

# The fields a report sets; the others (bot, owner, currency, dry_run) are fixed when the row is made.
_REPORTED = ("pair", "is_open", "is_short", "amount", "stake_amount", "open_rate", "close_rate", "open_date",
             "close_date", "profit_abs", "profit_ratio", "exit_reason")  # fmt: skip


@dataclass
class TradesApplied:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    stale: int = 0
    notified: int = 0


def _moment(timestamp_ms: Any) -> datetime | None:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms is not None else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _fields(report: TradeReport) -> dict[str, Any]:
    """A trade report (bots/commands.py) as Trade field values."""
    is_open = bool(report["is_open"])
    return {
        "pair": str(report["pair"])[:64],
        "is_open": is_open,
        "is_short": bool(report.get("is_short")),
        "amount": float(report["amount"] or 0),
        "stake_amount": float(report["stake_amount"] or 0),
        "open_rate": float(report["open_rate"]),
        "close_rate": None if is_open else _float(report.get("close_rate")),
        "open_date": _moment(report["open_timestamp"]),
        "close_date": None if is_open else _moment(report.get("close_timestamp")),
        "profit_abs": None if is_open else _float(report.get("profit_abs")),
        "profit_ratio": None if is_open else _float(report.get("profit_ratio")),
        "exit_reason": str(report.get("exit_reason") or "")[:128],
    }


class _Apply:
    """One report of one bot, applied inside trades_apply's transaction."""

    def __init__(self, bot: Bot, observed_at: float, result: TradesApplied) -> None:
        self.bot, self.observed_at, self.result = bot, observed_at, result
        self.news_since = datetime.now(UTC) - NEWS_WINDOW

    def notify(self, row: Trade, event: Event) -> None:
        trade_notification(trade=row, event=event)
        self.result.notified += 1

    def remove(self, row: Trade) -> None:
        """freqtrade removed the trade: an entry that never filled (announced as cancelled), or a manual delete."""
        if row.is_open and not row.is_filled:
            self.notify(row, "entry_cancel")
        row.delete()
        self.result.deleted += 1

    def create(self, trade_id: int, fields: dict[str, Any], raw: dict[str, Any]) -> Trade:
        bot = self.bot
        row = Trade.objects.create(bot=bot, bot_name=bot.name, owner_id=bot.owner_id, trade_id=trade_id,
                                   stake_currency=bot.stake_currency, dry_run=bot.dry_run, raw=raw,
                                   observed_at=self.observed_at, **fields)  # fmt: skip
        self.result.created += 1
        if row.open_date >= self.news_since:
            self.notify(row, "entry")
        if not row.is_open and row.close_date is not None and row.close_date >= self.news_since:
            self.notify(row, "exit")
        return row

    def update(self, row: Trade, fields: dict[str, Any], raw: dict[str, Any] | None) -> None:
        changed = [name for name in _REPORTED if getattr(row, name) != fields[name]]
        if not changed:
            self.result.unchanged += 1
            return
        was_open, was_filled = row.is_open, row.is_filled
        for name in changed:
            setattr(row, name, fields[name])
        row.raw, row.observed_at = raw or row.raw, self.observed_at
        row.save(update_fields=[*changed, "raw", "observed_at", "updated_at"])
        self.result.updated += 1
        if not was_filled and row.is_filled:
            self.notify(row, "entry_fill")
        if was_open and not row.is_open:
            self.notify(row, "exit")


def trades_apply(
    *, bot_id: int, trades: list[TradeReport | DeletedTrade], observed_at: float | None = None
) -> TradesApplied:
    """Upsert (or delete) the reported trades of one bot, recompute its totals, announce what happened.

    Idempotent: a report that matches the row changes nothing and announces nothing, so the gateway
    may re-send (it does after a restart). A report older than the row's (``observed_at``) is
    ignored, and a closed trade is never reopened by a late report. Notifications go out after commit.
    """
    observed_at = time.time() if observed_at is None else float(observed_at)
    result = TradesApplied()
    with transaction.atomic():
        # The row lock orders two listeners applying reports of the same bot (PostgreSQL).
        bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
        if bot is None:
            return result  # deleted since; its collected trades keep their rows
        apply = _Apply(bot, observed_at, result)
        ids = [int(report["trade_id"]) for report in trades]
        rows = {row.trade_id: row for row in Trade.objects.filter(bot=bot, trade_id__in=ids)}
        for report in trades:
            trade_id = int(report["trade_id"])
            row = rows.get(trade_id)
            if row is not None and observed_at < row.observed_at:
                result.stale += 1
                continue
            if report.get("deleted"):
                if row is not None:
                    apply.remove(rows.pop(trade_id))
                continue
            fields = _fields(report)
            if row is not None and row.open_date != fields["open_date"]:
                # Another trade under the same id: freqtrade's SQLite gives the id of a deleted last
                # trade (a cancelled entry) to the next one.
                apply.remove(rows.pop(trade_id))
                row = None
            if row is None:
                rows[trade_id] = apply.create(trade_id, fields, report.get("raw") or {})
            elif not row.is_open and fields["is_open"]:
                result.stale += 1  # a closed trade never reopens: the report is older than it says
            else:
                apply.update(row, fields, report.get("raw"))
        bot_totals_refresh(bot_id=bot.pk)
    return result


def bot_totals_refresh(*, bot_id: int) -> dict[str, Any]:
    """A bot's total_trades, profitable_trades and total_profit, from its closed trades."""
    figures = Trade.objects.filter(bot_id=bot_id, is_open=False).aggregate(
        total_trades=Count("id"),
        profitable_trades=Count("id", filter=Q(profit_abs__gt=0)),
        total_profit=Sum("profit_abs", default=0.0),
    )
    # The sum of floats, written to the bot's 8-decimal column as exact text.
    figures["total_profit"] = Decimal(repr(float(figures["total_profit"]))).quantize(Decimal("0.00000001"))
    Bot.objects.filter(pk=bot_id).update(**figures)
    return figures


def bot_balance_record(*, bot_id: int, balance: BalanceReport, observed_at: float) -> BotBalance | None:
    """Keep the bot's latest balance as freqtrade reported it; an older report than the one kept changes nothing.

    Returns the row written, or None (the bot is gone, or the report is stale).
    """
    with transaction.atomic():
        bot = Bot.objects.select_for_update().filter(pk=bot_id).only("id").first()
        if bot is None:
            return None
        kept = BotBalance.objects.filter(bot=bot).values_list("observed_at", flat=True).first()
        if kept is not None and observed_at < kept:
            return None
        open_trades = {str(mark["trade_id"]): {"current_rate": mark["current_rate"], "profit_abs": mark["profit_abs"],
                                               "profit_ratio": mark["profit_ratio"]}
                       for mark in balance["open_trades"]}  # fmt: skip
        row, _ = BotBalance.objects.update_or_create(bot=bot, defaults={
            "stake_currency": balance["stake_currency"][:16], "total": balance["total"], "free": balance["free"],
            "starting_capital": balance["starting_capital"], "currencies": balance["currencies"],
            "open_trades": open_trades, "observed_at": observed_at,
            "read_at": datetime.fromtimestamp(observed_at, UTC),
        })  # fmt: skip
    return row
