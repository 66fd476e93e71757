"""Reading strategies, scoped to who may use them: a user's own, and the built-ins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from multibot.errors import NotFoundError
from strategies.models import Strategy, StrategyVersion

if TYPE_CHECKING:
    from bots.models import Bot
    from multibot.models import User


def strategy_list(*, user: User | None) -> QuerySet[Strategy]:
    """The strategies ``user`` may run: their own and the built-ins (another user's are never listed)."""
    visible = Q(owner__isnull=True) if user is None else Q(owner__isnull=True) | Q(owner=user)
    return Strategy.objects.filter(visible)


def strategy_names(*, user: User) -> list[str]:
    return sorted(set(strategy_list(user=user).values_list("name", flat=True)))


def strategy_get(*, user: User | None, name: str, owner: str | None = None) -> Strategy:
    """The strategy ``name`` as ``user`` sees it: their own, else the built-in. NotFoundError otherwise.

    A superuser may name another user's with ``owner`` (a username); for anyone else it must be their own.
    """
    if owner and user is not None and owner != user.get_username():
        strategy = None
        if user.is_superuser:
            strategy = Strategy.objects.filter(name=name, owner__username=owner).first()
        if strategy is None:
            raise NotFoundError(f"Strategy {name!r} not found.")
        return strategy
    found = {strategy.owner_id: strategy for strategy in strategy_list(user=user).filter(name=name)}
    strategy = found.get(getattr(user, "pk", None)) or found.get(None)
    if strategy is None:
        raise NotFoundError(f"Strategy {name!r} not found.")
    return strategy


def strategy_latest_version(*, name: str, owner: User | None) -> StrategyVersion | None:
    """The newest version of the strategy a bot of ``owner`` runs under ``name``, or None."""
    try:
        strategy = strategy_get(user=owner, name=name)
    except NotFoundError:
        return None
    if strategy.current_version_id is not None:
        version = StrategyVersion.objects.select_related("strategy").filter(pk=strategy.current_version_id).first()
        if version is not None:
            return version
    return strategy.versions.select_related("strategy").order_by("-created_at", "-id").first()


def strategy_versions(*, strategy: Strategy) -> QuerySet[StrategyVersion]:
    return strategy.versions.select_related("uploaded_by").order_by("-created_at", "-id")


def strategy_bots(*, strategy: Strategy, user: User) -> QuerySet[Bot]:
    """The bots of ``user`` that name the strategy (for a built-in: those with no own strategy of the name)."""
    from bots.models import Bot

    bots = Bot.objects.filter(strategy_name=strategy.name)
    if strategy.owner_id is not None:
        return bots.filter(owner_id=strategy.owner_id)
    shadowed = Strategy.objects.filter(name=strategy.name, owner__isnull=False).values("owner_id")
    bots = bots.exclude(owner_id__in=shadowed)
    return bots if user.is_superuser else bots.filter(owner=user)


def hyperoptable_strategy_names(*, user: User) -> list[str]:
    """The names ``user`` may run whose current version has parameters hyperopt may optimize (as its dry
    load found them); an own strategy shadows the built-in of its name."""
    found: dict[str, Strategy] = {}
    for strategy in strategy_list(user=user).select_related("current_version"):
        if strategy.name not in found or strategy.owner_id is not None:
            found[strategy.name] = strategy
    names = []
    for name, strategy in found.items():
        version = strategy.current_version or strategy.versions.order_by("-created_at", "-id").first()
        if version is not None and any(param.get("optimize", True) for param in version.hyperopt_parameters or []):
            names.append(name)
    return sorted(names)
