"""The trading protocol, written once: what the management side asks of a gateway, and what a gateway reports.

- ``Command``: the kinds of command on ``TRADING_COMMANDS``, each with the desired state it records
  and the word the API answers with;
- ``BotStatus`` and ``DesiredState``: what a bot is doing, and what its owner wants it to do;
- ``Report``: the kinds of report on ``TRADING_STATUS``;
- one TypedDict per payload with one ``build_*`` function (the producer's) and one ``read_*``
  function (the consumer's): a payload key is spelled here and nowhere else.

No models and no I/O: the supervisor, the gateway, the services and the listeners all import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict

from django.db.models import TextChoices


class BotStatus(TextChoices):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    ERROR = "error"
    # Its process exists but its own API has stopped answering the gateway's probes (hung, frozen, swapped out).
    UNRESPONSIVE = "unresponsive"


# A process exists (or is about to) in these.
ACTIVE_STATUSES = (BotStatus.STARTING, BotStatus.RUNNING, BotStatus.STOPPING, BotStatus.UNRESPONSIVE)


class DesiredState(TextChoices):
    """What the owner asked for: the gateway restarts a crashed bot only while it is ``RUNNING``."""

    RUNNING = "running"
    STOPPED = "stopped"


class Command(StrEnum):
    """A command kind: its envelope type, the desired state it records, the API's answer word."""

    START = "bot_start", DesiredState.RUNNING, "start_command_sent"
    STOP = "bot_stop", DesiredState.STOPPED, "stop_command_sent"
    RESTART = "bot_restart", DesiredState.RUNNING, "restart_command_sent"
    KILL = "bot_kill", DesiredState.STOPPED, "emergency_stop_command_sent"
    EMERGENCY_STOP = "emergency_stop", DesiredState.STOPPED, "emergency_stop_command_sent"

    desired_state: DesiredState
    answer: str

    def __new__(cls, value: str, desired_state: DesiredState, answer: str) -> Command:
        member = str.__new__(cls, value)
        member._value_ = value
        member.desired_state = desired_state
        member.answer = answer
        return member


class Report(StrEnum):
    """The kinds of report a gateway publishes."""

    BOT_STATUS = "bot_status"
    GATEWAY_HEARTBEAT = "gateway_heartbeat"
    TRADE_UPDATE = "trade_update"


# -- commands -------------------------------------------------------------------------------------
class BotCommand(TypedDict):
    """The payload of START, STOP, RESTART and KILL."""

    bot_id: int
    requested_by: str
    # "delete": the stop that comes before a running bot's deletion.
    then: NotRequired[Literal["delete"]]


def build_bot_command(*, bot_id: int, requested_by: str = "", then_delete: bool = False) -> BotCommand:
    command = BotCommand(bot_id=int(bot_id), requested_by=requested_by)
    if then_delete:
        command["then"] = "delete"
    return command


def read_bot_command(payload: Mapping[str, Any]) -> BotCommand:
    command = BotCommand(bot_id=int(payload["bot_id"]), requested_by=str(payload.get("requested_by") or ""))
    if payload.get("then") == "delete":
        command["then"] = "delete"
    return command


class EmergencyStop(TypedDict):
    """The payload of EMERGENCY_STOP: every bot named is stopped, whatever its desired state."""

    bot_ids: list[int]
    force_exit: bool


def build_emergency_stop(*, bot_ids: Sequence[int], force_exit: bool) -> EmergencyStop:
    return EmergencyStop(bot_ids=[int(bot_id) for bot_id in bot_ids], force_exit=bool(force_exit))


def read_emergency_stop(payload: Mapping[str, Any]) -> EmergencyStop:
    return build_emergency_stop(bot_ids=payload["bot_ids"], force_exit=bool(payload.get("force_exit")))


# -- reports --------------------------------------------------------------------------------------
class BotStatusReport(TypedDict):
    """One bot's state as its gateway observed it ``at`` (epoch seconds): a later report wins."""

    bot_id: int
    status: BotStatus
    at: float
    host: str
    pid: int | None
    pid_create_time: float | None
    started_at: float | None
    restart_count: int
    detail: str
    exit_code: int | None
    outcome: str  # how a stop ended: "terminated", "killed", "killed_after_grace", ...


def build_bot_status(
    *,
    bot_id: int,
    status: BotStatus,
    at: float,
    host: str,
    pid: int | None = None,
    pid_create_time: float | None = None,
    started_at: float | None = None,
    restart_count: int = 0,
    detail: str = "",
    exit_code: int | None = None,
    outcome: str = "",
) -> BotStatusReport:
    return BotStatusReport(
        bot_id=int(bot_id), status=BotStatus(status), at=float(at), host=host, pid=pid,
        pid_create_time=pid_create_time, started_at=started_at, restart_count=int(restart_count), detail=detail,
        exit_code=exit_code, outcome=outcome,
    )  # fmt: skip


def read_bot_status(payload: Mapping[str, Any]) -> BotStatusReport:
    pid, created, started, code = (payload.get(key) for key in ("pid", "pid_create_time", "started_at", "exit_code"))
    return build_bot_status(
        bot_id=payload["bot_id"], status=payload["status"], at=payload["at"], host=str(payload.get("host") or ""),
        pid=None if pid is None else int(pid), pid_create_time=None if created is None else float(created),
        started_at=None if started is None else float(started), restart_count=payload.get("restart_count") or 0,
        detail=str(payload.get("detail") or ""), exit_code=None if code is None else int(code),
        outcome=str(payload.get("outcome") or ""),
    )  # fmt: skip


class BotBeat(TypedDict):
    """One bot as its gateway supervises it at the heartbeat: the snapshot's line for it.

    ``pid`` is None for a bot waiting out its restart backoff (supervised, no process yet).
    """

    bot_id: int
    pid: int | None
    status: BotStatus
    pid_create_time: NotRequired[float]
    started_at: NotRequired[float]
    restart_count: NotRequired[int]
    # When the bot's own freqtrade API last answered the gateway's probe (epoch seconds).
    answered_at: NotRequired[float]
    # A bot that ended lately (stopped, error): its final words, as its last report said them.
    detail: NotRequired[str]
    # Sampled by the gateway (the process and its children).
    cpu_percent: NotRequired[float]
    memory_mb: NotRequired[float]


def build_bot_beat(
    *,
    bot_id: int,
    pid: int | None,
    status: BotStatus,
    pid_create_time: float | None = None,
    started_at: float | None = None,
    restart_count: int | None = None,
    answered_at: float | None = None,
    cpu_percent: float | None = None,
    memory_mb: float | None = None,
    detail: str = "",
) -> BotBeat:
    beat = BotBeat(bot_id=int(bot_id), pid=None if pid is None else int(pid), status=BotStatus(status))
    for key, value in (("pid_create_time", pid_create_time), ("started_at", started_at),
                       ("answered_at", answered_at)):  # fmt: skip
        if value is not None:
            beat[key] = float(value)  # type: ignore[literal-required]
    if restart_count is not None:
        beat["restart_count"] = int(restart_count)
    if cpu_percent is not None:
        beat["cpu_percent"] = round(float(cpu_percent), 1)
    if memory_mb is not None:
        beat["memory_mb"] = round(float(memory_mb), 1)
    if detail:
        beat["detail"] = detail
    return beat


class GatewayHeartbeat(TypedDict):
    """Every few seconds: the snapshot of the bots this gateway supervises now.

    ``complete``: a bot of ``host`` that is not listed has no process there, and the listeners correct
    its record. A heartbeat without it (an older gateway's, which left out pending restarts) only
    says which processes it saw.
    """

    bots: list[BotBeat]
    at: float
    host: str
    complete: NotRequired[bool]
    capacity: NotRequired[HostCapacity]


class HostCapacity(TypedDict):
    """What the gateway's host can hold and has, as it says in each heartbeat (it registers the host)."""

    bot_slots: int
    memory_total_mb: int
    memory_available_mb: int
    cpus: int
    gateway_started_at: float
    # The ports its bots' API servers take (its MULTIBOT_BOT_PORT_FIRST/LAST); 0, 0 from an older gateway.
    api_port_first: NotRequired[int]
    api_port_last: NotRequired[int]


def build_gateway_heartbeat(
    *, bots: Sequence[BotBeat], at: float, host: str, complete: bool = True, capacity: HostCapacity | None = None
) -> GatewayHeartbeat:
    beat = GatewayHeartbeat(bots=list(bots), at=float(at), host=host)
    if complete:
        beat["complete"] = True
    if capacity is not None:
        beat["capacity"] = capacity
    return beat


def read_host_capacity(payload: Mapping[str, Any]) -> HostCapacity:
    return HostCapacity(
        bot_slots=int(payload.get("bot_slots") or 0), memory_total_mb=int(payload.get("memory_total_mb") or 0),
        memory_available_mb=int(payload.get("memory_available_mb") or 0), cpus=int(payload.get("cpus") or 0),
        gateway_started_at=float(payload.get("gateway_started_at") or 0),
        api_port_first=int(payload.get("api_port_first") or 0), api_port_last=int(payload.get("api_port_last") or 0),
    )  # fmt: skip


def read_gateway_heartbeat(payload: Mapping[str, Any]) -> GatewayHeartbeat:
    bots = [build_bot_beat(bot_id=beat["bot_id"], pid=beat.get("pid"), status=beat["status"],
                           pid_create_time=beat.get("pid_create_time"), started_at=beat.get("started_at"),
                           restart_count=beat.get("restart_count"), answered_at=beat.get("answered_at"),
                           cpu_percent=beat.get("cpu_percent"), memory_mb=beat.get("memory_mb"),
                           detail=str(beat.get("detail") or ""))
            for beat in payload["bots"]]  # fmt: skip
    capacity = payload.get("capacity")
    return build_gateway_heartbeat(bots=bots, at=payload["at"], host=str(payload.get("host") or ""),
                                   complete=payload.get("complete") is True,
                                   capacity=None if capacity is None else read_host_capacity(capacity))  # fmt: skip


class TradeReport(TypedDict):
    """One trade as freqtrade's API reports it, trimmed to what the record holds (``raw`` is carried whole)."""

    trade_id: int
    pair: str
    is_open: bool
    is_short: bool
    amount: float
    stake_amount: float
    open_rate: float
    close_rate: float | None
    open_timestamp: int  # milliseconds, as freqtrade gives them
    close_timestamp: int | None
    profit_abs: float | None  # None while open: an open trade's profit moves with every price
    profit_ratio: float | None
    exit_reason: str
    raw: dict[str, Any]


class DeletedTrade(TypedDict):
    """freqtrade no longer has the trade (an entry order that never filled, or a manual delete)."""

    trade_id: int
    deleted: Literal[True]


def trade_report(trade: dict[str, Any]) -> TradeReport:
    """One freqtrade trade (from /status, /trades or /trade/<id>) as a ``TradeUpdate`` item."""
    is_open = bool(trade["is_open"])
    return TradeReport(
        trade_id=int(trade["trade_id"]),
        pair=trade["pair"],
        is_open=is_open,
        is_short=bool(trade.get("is_short")),
        amount=trade["amount"],
        stake_amount=trade["stake_amount"],
        open_rate=trade["open_rate"],
        close_rate=None if is_open else trade.get("close_rate"),
        open_timestamp=trade["open_timestamp"],
        close_timestamp=None if is_open else trade.get("close_timestamp"),
        # /status reports an open trade's current (unrealised) profit, which moves with every price:
        # only a closed trade's profit is part of the record, or every round would re-send every open trade.
        profit_abs=None if is_open else trade.get("profit_abs"),
        profit_ratio=None if is_open else trade.get("profit_ratio"),
        exit_reason=trade.get("exit_reason") or "",
        raw=trade,  # carried whole, as freqtrade sent it
    )


def deleted_report(trade_id: int) -> DeletedTrade:
    return DeletedTrade(trade_id=int(trade_id), deleted=True)


class OpenTradeMark(TypedDict):
    """An open trade at the current price, as /status reported it with the balance."""

    trade_id: int
    current_rate: float | None
    profit_abs: float | None  # unrealised, fees to exit included (freqtrade's own figure)
    profit_ratio: float | None


class BalanceReport(TypedDict):
    """freqtrade's /balance of one bot, in its stake currency, and its open trades at the same moment."""

    stake_currency: str
    total: float  # freqtrade's "total": every currency it holds, valued in the stake currency
    free: float  # the stake currency not held by an order
    starting_capital: float  # freqtrade's own (its dry-run wallet, or available capital, times the tradable ratio)
    currencies: list[dict[str, Any]]  # freqtrade's per-currency rows, carried whole
    open_trades: list[OpenTradeMark]


def _number(value: Any) -> float | None:
    # freqtrade sends NaN (a JSON extension) for a rate it could not get: no number.
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


def open_trade_mark(trade: Mapping[str, Any]) -> OpenTradeMark:
    """One open trade of /status (its current rate and unrealised profit)."""
    return OpenTradeMark(
        trade_id=int(trade["trade_id"]),
        current_rate=_number(trade.get("current_rate")),
        profit_abs=_number(trade.get("profit_abs")),
        profit_ratio=_number(trade.get("profit_ratio")),
    )


def balance_report(balance: Mapping[str, Any], open_trades: Sequence[Mapping[str, Any]]) -> BalanceReport:
    """freqtrade's /balance answer and its /status answer as one ``BalanceReport``."""
    stake = str(balance.get("stake") or "")
    currencies = [dict(row) for row in balance.get("currencies") or []]
    free = next((row.get("free") for row in currencies if row.get("currency") == stake and not row.get("is_position")),
                0.0)  # fmt: skip
    return BalanceReport(
        stake_currency=stake, total=_number(balance.get("total")) or 0.0, free=_number(free) or 0.0,
        starting_capital=_number(balance.get("starting_capital")) or 0.0, currencies=currencies,
        open_trades=[open_trade_mark(trade) for trade in open_trades if trade.get("is_open", True)],
    )  # fmt: skip


def read_balance_report(payload: Mapping[str, Any]) -> BalanceReport:
    return BalanceReport(
        stake_currency=str(payload.get("stake_currency") or ""), total=float(payload.get("total") or 0),
        free=float(payload.get("free") or 0), starting_capital=float(payload.get("starting_capital") or 0),
        currencies=list(payload.get("currencies") or []),
        open_trades=[open_trade_mark(mark) for mark in payload.get("open_trades") or []],
    )  # fmt: skip


class TradeUpdate(TypedDict):
    """New and changed trades of one bot, observed ``at``; with its balance when the gateway read one.

    ``balance`` is optional both ways: an older gateway sends none, and an older listener ignores it.
    """

    bot_id: int
    trades: list[TradeReport | DeletedTrade]
    at: float
    host: str
    balance: NotRequired[BalanceReport]


def build_trade_update(
    *,
    bot_id: int,
    trades: Sequence[TradeReport | DeletedTrade],
    at: float,
    host: str,
    balance: BalanceReport | None = None,
) -> TradeUpdate:
    update = TradeUpdate(bot_id=int(bot_id), trades=list(trades), at=float(at), host=host)
    if balance is not None:
        update["balance"] = balance
    return update


def read_trade_update(payload: Mapping[str, Any]) -> TradeUpdate:
    balance = payload.get("balance")
    return build_trade_update(bot_id=payload["bot_id"], trades=payload.get("trades") or [], at=payload["at"],
                              host=str(payload.get("host") or ""),
                              balance=None if balance is None else read_balance_report(balance))  # fmt: skip
