"""Reading jobs, always scoped to the user asking: another user's job does not exist for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from jobs.commands import FINISHED_STATUSES
from jobs.models import Job
from multibot.errors import NotFoundError

if TYPE_CHECKING:
    from multibot.models import User


def job_list(*, user: User, kind: str | None = None, status: str | None = None) -> QuerySet[Job]:
    jobs = Job.objects.all() if user.is_superuser else Job.objects.filter(owner=user)
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    return jobs


def job_get(*, user: User, job_id: int | str, kind: str | None = None) -> Job:
    key = str(job_id)
    # Digits only in ASCII ("¹".isdigit() is true, int("¹") fails); beyond 64 bits it is no id either.
    is_id = key.isascii() and key.isdigit() and int(key) < 2**63
    found = job_list(user=user, kind=kind).filter(pk=int(key)).first() if is_id else None
    if found is None:
        raise NotFoundError("Job not found")
    return found


def unfinished_jobs_of_strategy(*, name: str, owner_id: int | None) -> list[int]:
    """Ids of the queued or running jobs that run the strategy ``name`` (of that owner; any owner for a built-in)."""
    jobs = Job.objects.exclude(status__in=FINISHED_STATUSES).filter(parameters__strategy_name=name)
    if owner_id is not None:
        jobs = jobs.filter(owner_id=owner_id)
    return list(jobs.order_by("id").values_list("id", flat=True)[:20])


def strategy_jobs(*, name: str, owner_id: int | None, user: User, limit: int = 100) -> QuerySet[Job]:
    """The jobs that ran or run the strategy ``name`` (of that owner; for a built-in, of users without an
    own strategy of the name), newest first; a user other than a superuser sees only their own."""
    from strategies.models import Strategy

    jobs = Job.objects.filter(parameters__strategy_name=name)
    if owner_id is not None:
        jobs = jobs.filter(owner_id=owner_id)
    else:
        jobs = jobs.exclude(owner_id__in=Strategy.objects.filter(name=name, owner__isnull=False).values("owner_id"))
    if not user.is_superuser:
        jobs = jobs.filter(owner=user)
    return jobs.order_by("-created_at", "-id")[:limit]
