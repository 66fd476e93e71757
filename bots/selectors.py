"""Reading bots, always scoped to the user asking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, QuerySet

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
    bots = bot_lifecycle_list(user=user)
    # A number beyond 64 bits is no id (and would overflow the database driver): look it up as a name.
    found = bots.filter(pk=int(key)).first() if key.isascii() and key.isdigit() and int(key) < 2**63 else None
    if found is not None:
        return found
    named = list(bots.filter(name=key).order_by("id")[:20])
    own = [bot for bot in named if bot.owner_id == user.pk]
    if len(own) == 1:
        return own[0]
    if len(named) == 1:
        return named[0]
    if not named:
        raise NotFoundError("Bot not found")
    raise ConflictError(f"{len(named)} bots are named {key!r}; use the bot's id.")
