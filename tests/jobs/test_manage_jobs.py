"""manage.py jobs prune: finished jobs older than a bound go, rows and files, through jobs_prune, audited."""

from __future__ import annotations

import io
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditLog
from audit.services import Actor
from jobs.models import Job
from jobs.services import job_dir, jobs_prune

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def prune(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("jobs", "prune", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def make_job(owner: Any, status: str, *, finished_days_ago: float | None, created_days_ago: float = 50) -> Job:
    """A job with its directory (an attempt's result file in it), as old as told."""
    now = timezone.now()
    job = Job.objects.create(owner=owner, kind="backtest", status=status, results={"total_trades": 3})
    finished = None if finished_days_ago is None else now - finished_days_ago * DAY
    Job.objects.filter(pk=job.pk).update(created_at=now - created_days_ago * DAY, finished_at=finished)
    results = job_dir(job.pk) / "attempt-1" / "user_data" / "backtest_results"
    results.mkdir(parents=True)
    (results / "result.json").write_text("{}" * 500)
    return job


def leftover(name: str, *, days_ago: float) -> Path:
    """A directory of the jobs directory with no job row (its job was pruned from another host)."""
    path = Path(job_dir(0)).parent / name
    (path / "attempt-1").mkdir(parents=True)
    stamp = (timezone.now() - days_ago * DAY).timestamp()
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def jobs(user, settings, tmp_path) -> dict[str, Any]:
    settings.JOBS = {**settings.JOBS, "dir": tmp_path / "jobs"}
    return {
        "completed": make_job(user, "completed", finished_days_ago=40),
        "failed": make_job(user, "failed", finished_days_ago=31),
        "cancelled_before_start": make_job(user, "cancelled", finished_days_ago=None, created_days_ago=45),
        "recent": make_job(user, "completed", finished_days_ago=10),
        "running": make_job(user, "running", finished_days_ago=None),
        "queued": make_job(user, "queued", finished_days_ago=None),
        # Stamped finished by a bug or a hand edit: its status still says it is not.
        "running_with_an_end": make_job(user, "running", finished_days_ago=40),
        "left_behind": leftover("900001", days_ago=40),
        "left_just_now": leftover("900002", days_ago=0),
        "not_a_job": leftover("notes", days_ago=40),
    }


def old_ids(jobs: dict[str, Any]) -> list[int]:
    return sorted(jobs[name].pk for name in ("completed", "failed", "cancelled_before_start"))


def test_a_dry_run_says_what_would_go_and_changes_nothing(jobs):
    # when
    answer = prune("--older-than", "30d", "--dry-run")

    # then
    assert answer["dry_run"] is True
    assert answer["job_ids"] == old_ids(jobs)
    assert answer["directories"] == 4  # three jobs', one left behind
    assert answer["freed_bytes"] == 3 * 1000
    assert Job.objects.count() == 7
    assert all(job_dir(job.pk).exists() for job in Job.objects.all())
    assert jobs["left_behind"].exists()
    assert not AuditLog.objects.exists()


def test_prune_deletes_finished_jobs_older_than_the_bound_with_their_files_and_audits_it(
    jobs, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        answer = prune("--older-than", "30d")

    # then: the old finished jobs are gone, rows and files
    assert answer["job_ids"] == old_ids(jobs)
    assert (answer["directories"], answer["freed_bytes"]) == (4, 3000)
    assert not Job.objects.filter(pk__in=old_ids(jobs)).exists()
    assert not any(job_dir(job_id).exists() for job_id in old_ids(jobs))
    assert not jobs["left_behind"].exists()
    # a recent job, unfinished ones, a fresh directory and one of no job's name stay
    kept = ("recent", "running", "queued", "running_with_an_end")
    assert sorted(Job.objects.values_list("id", flat=True)) == sorted(jobs[name].pk for name in kept)
    assert all(job_dir(jobs[name].pk).exists() for name in kept)
    assert jobs["left_just_now"].exists() and jobs["not_a_job"].exists()
    # audited as the operator: the jobs, then the directories of jobs already gone
    operator = Actor.operator("jobs prune").name
    rows = list(AuditLog.objects.filter(action="job_prune").order_by("id"))
    assert [(row.username, row.user_id, row.resource) for row in rows] == [(operator, None, "job")] * 2
    assert [(row.details["job_ids"], row.details["directories"], row.details["freed_bytes"]) for row in rows] == [
        (old_ids(jobs), 3, 3000), ([], 1, 0)]  # fmt: skip
    assert rows[0].details["finished_before"] == answer["finished_before"]
    # and again: nothing left to do, nothing recorded
    assert prune("--older-than", "30d")["job_ids"] == []
    assert AuditLog.objects.filter(action="job_prune").count() == 2


def test_the_bound_is_the_jobs_end(jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = prune("--older-than", "5w")  # 35 days: the failed job (31) is younger

    assert answer["job_ids"] == sorted([jobs["completed"].pk, jobs["cancelled_before_start"].pk])
    assert Job.objects.filter(pk=jobs["failed"].pk).exists()


def test_prune_goes_in_batches_each_with_its_audit_row(user, settings, tmp_path, monkeypatch):
    settings.JOBS = {**settings.JOBS, "dir": tmp_path / "jobs"}
    monkeypatch.setattr("jobs.services.PRUNE_BATCH", 2)
    made = [make_job(user, "completed", finished_days_ago=40).pk for _ in range(5)]

    answer = jobs_prune(actor=Actor.operator("jobs prune"), older_than=30 * DAY)

    assert answer["job_ids"] == made
    rows = AuditLog.objects.filter(action="job_prune").order_by("id")
    assert [row.details["job_ids"] for row in rows] == [made[:2], made[2:4], made[4:]]


@pytest.mark.parametrize("age", ["30", "30x", "0d", "-3d", "d"])
def test_an_age_that_is_not_one_is_a_usage_error(age):
    with pytest.raises(CommandError, match="is no age"):
        prune(f"--older-than={age}")


def test_the_bound_is_required():
    with pytest.raises(CommandError, match="--older-than"):
        call_command("jobs", "prune", stdout=io.StringIO())


def test_a_human_reads_what_went(jobs, django_capture_on_commit_callbacks):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("jobs", "prune", "--older-than", "30d", "--dry-run", stdout=out)

    ids = ", ".join(map(str, old_ids(jobs)))
    assert out.getvalue().startswith("Would delete 3 job(s) finished before ")
    assert f"({ids}); would remove 4 job directories on this host (0.0 MB)." in out.getvalue()
