"""The gateway's trade collection: each running bot's trades, read from its API a little at a time.

Every ``GATEWAY["trade_poll_seconds"]`` a background round asks each running bot for its trades and
publishes a ``TradeUpdate`` (bots/commands.py) on ``TRADING_STATUS`` with those that are new or
changed since the last round. What was published is remembered in memory only: a new gateway
(or a bot that starts again) re-sends its trades once, and the listeners' apply is idempotent.

freqtrade's ``/trades`` lists closed trades only (by id, 500 a page) and ``/status`` the open ones.
A round, per bot:
- every open trade, from ``/status`` (a handful; changed ones are published);
- a trade published open that is gone from ``/status`` was closed, or deleted (an entry order that
  never filled is removed by freqtrade): asked for by id, a 404 is published as ``deleted``;
- closed trades never seen opened and closed between two rounds. Their ids are above every id seen,
  so in id order they follow the closed trades we know: one ``/trades`` page from
  ``offset = len(known closed)``. The known closed plus the new ones must be freqtrade's
  ``total_trades``; when not (a trade deleted, one closed between two calls, more than a page
  new) the closed trades are read again from the start (a known one missing then was deleted).
  So is a bot's first round.

Each round also reads the bot's ``/balance`` (freqtrade's own valuation of its wallet) and carries
it, with the open trades' current rates and profits from the same ``/status``, in the round's last
update (alone in one when no trade changed). It is sent when it differs from the last one sent.
A bot whose ``/balance`` fails (an error, the last look's spent budget) still has its trades published.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection

from bots.commands import (
    BalanceReport,
    BotStatus,
    DeletedTrade,
    TradeReport,
    TradeUpdate,
    balance_report,
    build_trade_update,
    deleted_report,
    trade_report,
)
from bots.ftclient import FreqtradeApiError, FreqtradeClient, client_for
from bots.models import Bot
from bots.selectors import LIFECYCLE_FIELDS
from streams.bus import BusError

if TYPE_CHECKING:
    from bots.gateway.supervisor import Child

logger = logging.getLogger(__name__)

PAGE = 500  # freqtrade's cap on /trades
BATCH_BYTES = 256 * 1024  # trades per trade_update: well under the bus's 512 KiB envelope limit
ERROR_LOG_SECONDS = 60.0

Publish = Callable[[TradeUpdate], object]

# The fields of a report that say whether a trade changed (``raw`` is carried, never compared).
COMPARED = ("pair", "is_open", "is_short", "amount", "stake_amount", "open_rate", "close_rate", "open_timestamp",
            "close_timestamp", "profit_abs", "profit_ratio", "exit_reason")  # fmt: skip


def _fingerprint(report: TradeReport) -> tuple[Any, ...]:
    return tuple(report[name] for name in COMPARED)


@dataclass
class BotTrades:
    """What was published for one bot: open trades (as last published) and the ids of closed ones."""

    open: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    scanned: bool = False  # the closed trades were read from the start once
    balance: BalanceReport | None = None  # as last published

    def is_news(self, report: TradeReport) -> bool:
        """Not published as it is now (a closed trade never changes again)."""
        if report["is_open"]:
            return self.open.get(report["trade_id"]) != _fingerprint(report)
        return report["trade_id"] not in self.closed


def _closed_trades(client: FreqtradeClient, known: set[int], *, scanned: bool) -> tuple[dict[int, Any], set[int]]:
    """Closed trades worth a look, and the ids of all closed trades the bot has now."""
    if scanned:
        page = client.trades(offset=len(known), limit=PAGE)
        tail = {int(trade["trade_id"]): trade for trade in page["trades"]}
        if len(known | tail.keys()) == page["total_trades"]:
            return tail, known | tail.keys()
    found: dict[int, Any] = {}
    while True:
        page = client.trades(offset=len(found), limit=PAGE)
        found.update((int(trade["trade_id"]), trade) for trade in page["trades"])
        if not page["trades"] or len(found) >= page["total_trades"]:
            return found, set(found)


def _batches(
    reports: list[TradeReport | DeletedTrade], limit: int = BATCH_BYTES
) -> Iterator[list[TradeReport | DeletedTrade]]:
    batch: list[TradeReport | DeletedTrade] = []
    size = 0
    for report in reports:
        length = len(json.dumps(report, separators=(",", ":")))
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(report)
        size += length
    if batch:
        yield batch


class TradeCollector:
    def __init__(
        self, *, publish: Publish, host: str = "", poll_seconds: float | None = None, timeout: float = 5.0
    ) -> None:
        """``publish(update)`` puts one trade update on the bus and raises BusError when it cannot."""
        self.publish, self.host = publish, host
        self.poll_seconds = settings.GATEWAY["trade_poll_seconds"] if poll_seconds is None else poll_seconds
        self.timeout = timeout
        self.bots: dict[int, BotTrades] = {}
        self._next_round = 0.0
        self._round: threading.Thread | None = None
        self._last_failure_log: dict[tuple[int, str], float] = {}

    def tick(self, running: Mapping[int, Child]) -> bool:
        """Start a round in the background when one is due and the last one is done; True if started."""
        if self._round is not None and self._round.is_alive():
            return False
        now = time.monotonic()
        if now < self._next_round:
            return False
        self._next_round = now + self.poll_seconds
        # Not an unresponsive bot: its calls would only wait out their timeouts.
        bot_ids = sorted(bot_id for bot_id, child in running.items() if child.status == BotStatus.RUNNING)
        if not bot_ids and not self.bots:
            return False
        # A bot that does not answer costs a timeout per call: never in the gateway's command loop.
        self._round = threading.Thread(target=self._background_round, args=(bot_ids,), name="trade-collector",
                                       daemon=True)  # fmt: skip
        self._round.start()
        return True

    def _background_round(self, bot_ids: list[int]) -> None:
        try:
            self.collect(bot_ids)
        except Exception:  # the database is away, say: logged, and the next round tries again
            logger.exception("trade collection round failed")
        finally:
            connection.close()  # this thread's own connection

    def collect(self, bot_ids: Iterable[int]) -> dict[int, int]:
        """One round over the given (running) bots; returns how many trades were published per bot."""
        wanted = set(bot_ids)
        for bot_id in self.bots.keys() - wanted:
            del self.bots[bot_id]  # what was published for a bot lasts as long as its run
        published: dict[int, int] = {}
        # Only what a client needs: one bot's unreadable row (a broken stake, say) never stops the round.
        for bot in Bot.objects.filter(pk__in=wanted).only(*LIFECYCLE_FIELDS):
            try:
                published[bot.pk] = self.collect_bot(bot)
            except Exception as exc:  # noqa: BLE001 - one bot's trouble never stops the others
                self._log_failure(bot, exc)
        return published

    def collect_bot(self, bot: Bot, *, deadline: float | None = None) -> int:
        """Publish the bot's new and changed trades; the bot's state moves on only once all are published.

        ``deadline`` (monotonic) bounds every call to the bot together: the last look of an emergency stop.
        """
        state = self.bots.get(bot.pk) or BotTrades()
        at = time.time()
        with client_for(bot, timeout=self.timeout, deadline=deadline) as client:
            status = client.status()
            seen = {int(trade["trade_id"]): trade for trade in status}
            deleted = []
            for trade_id in sorted(state.open.keys() - seen.keys()):
                trade = client.trade(trade_id)
                if trade is None:
                    deleted.append(trade_id)
                else:
                    seen[trade_id] = trade
            known = state.closed | {trade_id for trade_id, trade in seen.items() if not trade["is_open"]}
            closed, closed_ids = _closed_trades(client, known, scanned=state.scanned)
            balance = self._balance(bot, client, status)
        deleted += sorted(state.closed - closed_ids)
        # A trade that closed between the calls is in both: the later answer (closed) wins.
        reports = [trade_report(trade) for _, trade in sorted({**seen, **closed}.items())]
        changed: list[TradeReport | DeletedTrade] = [deleted_report(trade_id) for trade_id in deleted]
        changed += [report for report in reports if state.is_news(report)]
        batches = list(_batches(changed))
        news = balance if balance is not None and balance != state.balance else None
        if news is not None and not batches:
            batches.append([])
        for index, batch in enumerate(batches):
            last = index == len(batches) - 1
            self.publish(build_trade_update(bot_id=bot.pk, trades=batch, at=at, host=self.host,
                                            balance=news if last else None))  # fmt: skip
        self.bots[bot.pk] = BotTrades(
            open={report["trade_id"]: _fingerprint(report) for report in reports if report["is_open"]},
            closed=closed_ids,
            scanned=True,
            balance=state.balance if balance is None else balance,
        )
        return len(changed)

    def _balance(self, bot: Bot, client: FreqtradeClient, status: list[dict[str, Any]]) -> BalanceReport | None:
        """The bot's /balance with its open trades; None when it could not be read (the trades still go out)."""
        try:
            answer = client.balance()
        except FreqtradeApiError as exc:
            self._log_failure(bot, exc, what="balance")
            return None
        return balance_report(answer, status)

    def _log_failure(self, bot: Bot, exc: Exception, *, what: str = "trades") -> None:
        # A bot that is down would otherwise fill the log every round; messages never hold credentials.
        now = time.monotonic()
        if now - self._last_failure_log.get((bot.pk, what), float("-inf")) < ERROR_LOG_SECONDS:
            return
        self._last_failure_log[bot.pk, what] = now
        if isinstance(exc, FreqtradeApiError | BusError):
            logger.warning("%s of bot %s (%s) not collected: %s", what, bot.pk, bot.name, exc)
        else:
            logger.error("%s of bot %s (%s) not collected: %r", what, bot.pk, bot.name, exc)
