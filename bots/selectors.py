"""Reading bots, always scoped to the user asking."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from bots.models import Bot


def bot_list(*, user) -> QuerySet[Bot]:
    bots = Bot.objects.all()
    return bots if user.is_superuser else bots.filter(owner=user)


def bot_name_taken(*, owner, name: str, exclude_id: int | None = None) -> bool:
    bots = Bot.objects.filter(owner=owner, name=name)
    if exclude_id is not None:
        bots = bots.exclude(id=exclude_id)
    return bots.exists()


def bot_statistics(*, user) -> dict[str, object]:
    by_status = dict(bot_list(user=user).values_list("status").annotate(count=Count("id")).order_by())
    counts = {status: by_status.get(status, 0) for status in Bot.Status.values}
    return {"total_bots": sum(counts.values()), "by_status": counts, "running_bots": counts[Bot.Status.RUNNING]}
