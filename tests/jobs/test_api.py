"""The jobs API and the backtest API: what is refused before anything is queued, ownership, cancel."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from jobs import execution
from jobs.commands import Command, JobStatus
from jobs.models import Job
from multibot.redis_client import redis_client
from streams.bus import stream_key
from streams.catalog import BACKTESTING_COMMANDS
from tests.jobs.conftest import timerange

pytestmark = pytest.mark.django_db


def start(api, **body):
    return api.post("/api/v1/strategies/backtest", {"strategy_name": "Crossing", "timeframe": "5m",
                                                     "timerange": timerange(2), **body}, format="json")  # fmt: skip


def test_an_accepted_backtest_is_queued_and_its_command_published_after_commit(
    user_api, user, candle_sets, crossing_strategy, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = start(user_api, pairs=["BTC/USDT"], stake_amount=50, dry_run_wallet=500, max_open_trades=2,
                         fee=0.001, enable_protections=True, timeframe_detail="1m")  # fmt: skip

    # then
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body == {"status": "backtest_started", "task_id": body["task_id"], "strategy_name": "Crossing"}
    job = Job.objects.get(pk=int(body["task_id"]))
    assert (job.owner, job.kind, job.status) == (user, "backtest", JobStatus.QUEUED)
    assert job.parameters["pairs"] == ["BTC/USDT"] and job.parameters["stake_amount"] == 50
    assert job.parameters["timeframe_detail"] == "1m" and job.parameters["fee"] == 0.001
    entries = redis_client().xrange(stream_key(BACKTESTING_COMMANDS))
    assert [(fields["type"], f'"job_id":{job.pk}' in fields["payload"]) for _, fields in entries] == [
        (Command.JOB_RUN, True)
    ]
    assert AuditLog.objects.filter(action=AuditLog.Action.JOB_CREATE, resource=f"job:{job.pk}").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"strategy_name": "NoSuchStrategy"}, "strategy_name"),
        ({"timerange": "2024-01-01"}, "timerange"),
        ({"timerange": "20240230-20240301"}, "timerange"),
        ({"timerange": "20240105-20240101"}, "timerange"),
        ({"timerange": "20100101-20100105"}, "timerange"),
        ({"pairs": ["XRP/USDT"]}, "timeframe"),
        ({"timeframe": "1h"}, "timeframe"),
        ({"timeframe_detail": "15m"}, "timeframe_detail"),
        ({"fee": 0.5}, "fee"),
    ],
)
def test_a_backtest_that_cannot_run_is_a_422_and_nothing_is_queued(user_api, candle_sets, crossing_strategy, body,
                                                                   field):  # fmt: skip
    response = start(user_api, **body)

    assert response.status_code == 422, response.json()
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]
    assert not Job.objects.exists()
    assert redis_client().xlen(stream_key(BACKTESTING_COMMANDS)) == 0


def test_a_backtest_takes_the_pairs_of_the_callers_bot(user_api, user, candle_sets, crossing_strategy):
    from tests.factories import make_bot

    bot = make_bot(owner=user, pair_whitelist=["ETH/USDT"], stake_amount=25)

    response = start(user_api, bot_id=bot.pk)

    assert response.status_code == 202, response.json()
    job = Job.objects.get()
    assert (job.parameters["pairs"], job.parameters["stake_amount"]) == (["ETH/USDT"], 25.0)


def test_another_users_job_is_a_404_everywhere(user_api, other_api, candle_sets, crossing_strategy):
    task_id = start(user_api).json()["task_id"]

    for path in (f"/api/v1/jobs/{task_id}", f"/api/v1/jobs/{task_id}/logs", f"/api/v1/strategies/backtest/{task_id}"):
        assert other_api.get(path).status_code == 404, path
        assert user_api.get(path).status_code == 200, path
    assert other_api.post(f"/api/v1/jobs/{task_id}/cancel").status_code == 404
    assert other_api.get("/api/v1/jobs/").json()["total"] == 0
    compared = other_api.get(f"/api/v1/strategies/backtest/compare?ids={task_id}").json()
    assert compared["backtests"] == [{"task_id": task_id, "found": False}]
    assert Job.objects.get().status == JobStatus.QUEUED


def test_a_cancelled_queued_job_never_starts(user_api, candle_sets, crossing_strategy):
    task_id = start(user_api).json()["task_id"]

    response = user_api.post(f"/api/v1/jobs/{task_id}/cancel")

    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert execution.job_execute(job_id=int(task_id)) == "not_claimed"
    job = Job.objects.get()
    assert (job.status, job.attempt, job.started_at) == (JobStatus.CANCELLED, 0, None)
    assert user_api.post(f"/api/v1/jobs/{task_id}/cancel").status_code == 409
    assert AuditLog.objects.filter(action=AuditLog.Action.JOB_CANCEL, status="success").count() == 1


def test_jobs_are_listed_newest_first_filtered_and_paginated(user_api, admin_api, candle_sets, crossing_strategy):
    ids = [start(user_api).json()["task_id"] for _ in range(3)]
    user_api.post(f"/api/v1/jobs/{ids[0]}/cancel")

    page = user_api.get("/api/v1/jobs/?per_page=2&page=1").json()
    queued = user_api.get("/api/v1/jobs/?status=queued&kind=backtest").json()

    assert (page["total"], [job["task_id"] for job in page["jobs"]]) == (3, [ids[2], ids[1]])
    assert sorted(job["task_id"] for job in queued["jobs"]) == sorted(ids[1:])
    assert user_api.get("/api/v1/jobs/?kind=hyperopt").json()["total"] == 0
    assert user_api.get("/api/v1/jobs/?status=lost").status_code == 422
    assert admin_api.get("/api/v1/jobs/").json()["total"] == 3  # a superuser sees every job


def test_a_backtest_accepted_while_redis_is_down_is_published_by_the_reaper_once_it_is_back(
    user_api, candle_sets, crossing_strategy, redis_server, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from jobs import services

    # given: Redis goes away
    redis_server.stop()
    try:
        # when
        with django_capture_on_commit_callbacks(execute=True):
            response = start(user_api)
    finally:
        redis_server.start()

    # then: the job is kept, and its command goes out once the reaper looks
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=int(response.json()["task_id"]))
    assert (job.status, job.dispatched_at) == (JobStatus.QUEUED, None)
    assert redis_client().xlen(stream_key(BACKTESTING_COMMANDS)) == 0
    assert services.jobs_reap(now=timezone.now() + timedelta(minutes=5))["republished"] == 1
    entries = redis_client().xrange(stream_key(BACKTESTING_COMMANDS))
    assert [fields["type"] for _, fields in entries] == [Command.JOB_RUN]


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["¹", "٣", "99999999999999999999"])
def test_a_job_key_that_is_no_id_is_a_404(user_api, key):
    for path in (f"/api/v1/jobs/{key}", f"/api/v1/strategies/backtest/{key}", f"/api/v1/hyperopt/results/{key}"):
        response = user_api.get(path)

        assert response.status_code == 404, (path, response.content)
