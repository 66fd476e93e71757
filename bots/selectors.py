"""Reading bots, always scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from bots.commands import ACTIVE_STATUSES, DesiredState
from bots.models import Bot
from multibot.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from multibot.models import User


def bot_list(*, user: User) -> QuerySet[Bot]:
    bots = Bot.objects.all()
    return bots if user.is_superuser else bots.filter(owner=user)


def bot_statistics(*, user: User) -> dict[str, object]:
    by_status = dict(bot_list(user=user).values_list("status").annotate(count=Count("id")).order_by())
    counts = {status: by_status.get(status, 0) for status in Bot.Status.values}
    return {"total_bots": sum(counts.values()), "by_status": counts, "running_bots": counts[Bot.Status.RUNNING]}


# What stopping a bot needs, every one of them loadable whatever an older version (or a hand edit)
# left in the row's other columns: a Decimal beyond its digits raises when the model loads it.
LIFECYCLE_FIELDS = ("id", "owner", "name", "strategy_name", "status", "desired_state", "delete_requested", "host",
                    "pid", "pid_create_time", "api_port", "api_username", "api_password")  # fmt: skip


def bot_lifecycle_list(*, user: User) -> QuerySet[Bot]:
    """The user's bots with only ``LIFECYCLE_FIELDS`` loaded: commands and emergency stops read these."""
    return bot_list(user=user).only(*LIFECYCLE_FIELDS)


def bot_by_id_or_name(*, user: User, key: str) -> Bot:
    """By id, else by name: the caller's own bot first; a name several owners use is ambiguous.

    Only ``LIFECYCLE_FIELDS`` are loaded, so an emergency stop reaches a bot whose row is broken elsewhere.
    """
    return _by_id_or_name(bot_lifecycle_list(user=user), key=key, own_id=user.pk)


def _by_id_or_name(bots: QuerySet[Bot], *, key: str, own_id: int | None) -> Bot:
    # A number beyond 64 bits is no id (and would overflow the database driver): look it up as a name.
    found = bots.filter(pk=int(key)).first() if key.isascii() and key.isdigit() and int(key) < 2**63 else None
    if found is not None:
        return found
    named = list(bots.filter(name=key).order_by("id")[:20])
    own = [bot for bot in named if bot.owner_id == own_id]
    if len(own) == 1:
        return own[0]
    if len(named) == 1:
        return named[0]
    if not named:
        raise NotFoundError("Bot not found")
    raise ConflictError(f"{len(named)} bots are named {key!r}; use the bot's id.")


def bot_full_by_id_or_name(*, user: User, key: str) -> Bot:
    """As ``bot_by_id_or_name``, with the whole row (its configuration, its FreqAI model)."""
    return _by_id_or_name(bot_list(user=user), key=key, own_id=user.pk)


# -- the operator's view: no account, the whole fleet (manage.py bots) ---------------------------------
def bot_fleet_list(*, owner: User | None = None) -> QuerySet[Bot]:
    """Every bot, or ``owner``'s, with only ``LIFECYCLE_FIELDS`` loaded (commands and emergency stops)."""
    bots = Bot.objects.only(*LIFECYCLE_FIELDS)
    return bots if owner is None else bots.filter(owner=owner)


def bot_fleet_by_id_or_name(*, key: str, owner: User | None = None) -> Bot:
    """By id, else by name, among every bot or ``owner``'s; a name several owners use is ambiguous."""
    return _by_id_or_name(bot_fleet_list(owner=owner), key=key, own_id=None)


_FLEET_ROW_FIELDS = ("id", "name", "owner__username", "status", "desired_state", "host", "pid", "started_at",
                     "status_at")  # fmt: skip


def bot_fleet_rows(*, owner: User | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """One row per bot: id, name, owner, status, desired state, host, pid and since when its status holds
    (its start while it has a process, else the gateway's last report of it). Plain columns only, so a
    row broken in another column is listed too."""
    from datetime import UTC, datetime

    bots = Bot.objects.all() if owner is None else Bot.objects.filter(owner=owner)
    if status:
        bots = bots.filter(status=status)
    rows = []
    for row in bots.order_by("id").values(*_FLEET_ROW_FIELDS):
        started, reported = row["started_at"], row["status_at"]
        active = row["status"] in Bot.ACTIVE_STATUSES
        since = started if active and started else (datetime.fromtimestamp(reported, UTC) if reported else None)
        rows.append({"id": row["id"], "name": row["name"], "owner": row["owner__username"], "status": row["status"],
                     "desired_state": row["desired_state"], "host": row["host"], "pid": row["pid"],
                     "since": since})  # fmt: skip
    return rows


# -- live updates: read for the owner's group (realtime.broadcast routes by owner, not by request) -----
_LIVE_FIELDS = ("id", "owner_id", "name", "status", "pid", "started_at", "status_detail", "restart_count", "host",
                "dry_run", "stake_currency")  # fmt: skip
# What loading a row an older version left broken raises (a Decimal beyond its digits).
_UNREADABLE = (ArithmeticError, ValueError)


def _profit(bot_id: int) -> float | None:
    try:
        profit = Bot.objects.filter(pk=bot_id).values_list("total_profit", flat=True).first()
    except _UNREADABLE:
        return None
    return None if profit is None else float(profit)


def _profits(bot_ids: list[int]) -> dict[int, float | None]:
    try:
        rows = Bot.objects.filter(pk__in=bot_ids).values_list("id", "total_profit")
        return {pk: float(profit) for pk, profit in rows}
    except _UNREADABLE:  # one broken row: read them one by one, so only it goes without
        return {pk: _profit(pk) for pk in bot_ids}


def bot_live_status(*, bot_id: int) -> tuple[int, dict[str, Any]] | None:
    """(owner id, the ``bot_status_update`` data) of one bot; None when it is gone."""
    row = Bot.objects.filter(pk=bot_id).values(*_LIVE_FIELDS).first()
    if row is None:
        return None
    owner_id = row.pop("owner_id")
    started = row["started_at"]
    return owner_id, {
        "bot_id": row.pop("id"), "bot_name": row.pop("name"), **row,
        "started_at": started.isoformat() if started else None, "profit": _profit(bot_id),
    }  # fmt: skip


def bot_live_figures(*, bot_ids: list[int]) -> dict[int, dict[int, dict[str, Any]]]:
    """Per owner, per bot: its open trades (collected ``analytics.Trade`` rows) and its closed-trade profit."""
    rows = (
        Bot.objects.filter(pk__in=bot_ids)
        .annotate(open_trades=Count("trades", filter=Q(trades__is_open=True)))
        .values("id", "owner_id", "open_trades")
    )
    profits = _profits(bot_ids)
    figures: dict[int, dict[int, dict[str, Any]]] = {}
    for row in rows:
        figures.setdefault(row["owner_id"], {})[row["id"]] = {"open_trades": row["open_trades"],
                                                               "profit": profits.get(row["id"])}  # fmt: skip
    return figures


def runs_here(bot: Bot) -> bool:
    """The bot's process and API are on this machine (unplaced, or placed on a host of this machine):
    what this process may look up by pid or reach on 127.0.0.1."""
    return not bot.host or bot.host == settings.GATEWAY["host"] or bot.host in settings.BOTS["local_hosts"]


@dataclass(frozen=True)
class HostState:
    """A registered host as placement and routing see it: live or not, and the slots its bots hold."""

    name: str
    live: bool
    last_seen_at: datetime
    bot_slots: int
    busy: int

    @property
    def free_slots(self) -> int:
        return max(0, self.bot_slots - self.busy)


def host_states() -> dict[str, HostState]:
    """Every registered host, by name. Live: its last heartbeat is younger than
    GATEWAY["host_down_after_seconds"]. Busy: the bots placed there that hold a process or should
    (a stopped bot keeps its host but not its slot)."""
    from bots.models import Host

    live_since = timezone.now() - timedelta(seconds=settings.GATEWAY["host_down_after_seconds"])
    busy = dict(
        Bot.objects.exclude(host="")
        .filter(Q(status__in=ACTIVE_STATUSES) | Q(desired_state=DesiredState.RUNNING))
        .values_list("host")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {host.name: HostState(name=host.name, live=host.last_seen_at >= live_since, last_seen_at=host.last_seen_at,
                                 bot_slots=host.bot_slots, busy=busy.get(host.name, 0))
            for host in Host.objects.all()}  # fmt: skip


def host_list() -> list[dict[str, Any]]:
    """Every registered host with its capacity, its bots and whether its gateway is live (superusers only)."""
    from bots.models import Host

    states = host_states()
    bots: dict[str, list[dict[str, Any]]] = {}
    for row in Bot.objects.exclude(host="").order_by("id").values("id", "name", "status", "host"):
        bots.setdefault(row.pop("host"), []).append(row)
    hosts = []
    for host in Host.objects.all():
        state = states[host.name]
        hosts.append({
            "name": host.name, "status": "live" if state.live else "down",
            "last_seen_at": host.last_seen_at, "registered_at": host.registered_at,
            "gateway_started_at": host.gateway_started_at,
            "capacity": {"bot_slots": host.bot_slots, "free_slots": state.free_slots,
                         "memory_total_mb": host.memory_total_mb, "memory_available_mb": host.memory_available_mb,
                         "cpus": host.cpus},
            "bots": bots.get(host.name, []),
        })  # fmt: skip
    return hosts
