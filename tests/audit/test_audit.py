"""The audit log: what writes rows (successes and refusals), how it is read, and that rows never change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from django.contrib import admin
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory

from audit.models import AuditLog, AuditLogImmutable
from audit.services import Actor, audit_record
from bots.models import Bot
from tests.factories import make_bot

AUDIT = "/api/v1/audit/"
BOT = {"name": "a1", "strategy_name": "SampleStrategy", "stake_amount": 100}

pytestmark = pytest.mark.django_db


def record_at(at: datetime, *, user: Any, action: str = "bot_start", status: str = "success") -> AuditLog:
    """An audit row written through the service, stamped at ``at`` (timestamps are auto_now_add)."""
    with mock.patch("django.utils.timezone.now", return_value=at):
        return audit_record(actor=Actor(user=user, ip_address="10.0.0.1"), action=action, status=status)


# What writes rows


def test_a_bot_create_writes_exactly_one_successful_audit_row(user_api, user):
    # when
    response = user_api.post("/api/v1/bots/", BOT, format="json")

    # then
    assert response.status_code == 201
    rows = list(AuditLog.objects.all())
    assert len(rows) == 1
    row = rows[0]
    assert row.action == "bot_create"
    assert row.status == "success"
    assert row.ip_address == "127.0.0.1"
    assert row.username == user.username
    assert row.user_id == user.pk
    assert row.resource == f"bot:{response.json()['id']}"


def test_a_request_without_a_token_is_audited_as_denied(api):
    # when
    response = api.post("/api/v1/bots/", BOT, format="json")

    # then
    assert response.status_code == 401
    row = AuditLog.objects.get()
    assert (row.action, row.status, row.user_id, row.username) == ("bot_create", "denied", None, "")
    assert row.ip_address == "127.0.0.1"
    assert row.details["status_code"] == 401
    assert not Bot.objects.exists()


def test_an_invalid_bot_create_is_audited_as_a_failure(user_api, user):
    # when
    response = user_api.post("/api/v1/bots/", {"name": "a1"}, format="json")

    # then
    assert response.status_code == 422
    row = AuditLog.objects.get()
    assert (row.action, row.status, row.user_id) == ("bot_create", "failure", user.pk)
    assert row.details["status_code"] == 422


def test_a_non_superuser_creating_a_user_is_audited_as_denied(user_api, user):
    # when
    response = user_api.post("/api/v1/users/", {"username": "mallory", "password": "x" * 20}, format="json")

    # then
    assert response.status_code == 403
    row = AuditLog.objects.get()
    assert (row.action, row.status, row.username) == ("user_create", "denied", user.username)
    assert row.details["detail"] == "Not enough permissions"


def test_deleting_another_users_bot_is_a_404_audited_as_a_failed_delete(user_api, user, other_user):
    # given
    bot = make_bot(owner=other_user)
    before = AuditLog.objects.count()

    # when
    response = user_api.delete(f"/api/v1/bots/{bot.pk}")

    # then
    assert response.status_code == 404
    assert Bot.objects.filter(pk=bot.pk).exists()
    assert AuditLog.objects.count() == before + 1
    row = AuditLog.objects.first()
    # Under the action a successful delete records, so one filter finds attempts and outcomes.
    assert (row.action, row.status, row.user_id) == ("bot_delete", "failure", user.pk)
    assert row.resource == f"bot:{bot.pk}"


def test_reading_the_audit_log_writes_no_rows(user_api):
    assert user_api.get(AUDIT).status_code == 200

    assert not AuditLog.objects.exists()


# Reading the log


def test_the_audit_log_lists_rows_newest_first_in_the_documented_shape(admin_api, user):
    # given
    older = record_at(datetime(2025, 12, 1, 9, tzinfo=UTC), user=user, action="bot_start")
    newer = record_at(datetime(2025, 12, 2, 9, tzinfo=UTC), user=user, action="bot_stop")

    # when
    response = admin_api.get(AUDIT)

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"logs", "total", "page", "per_page"}
    assert (body["total"], body["page"], body["per_page"]) == (2, 1, 50)
    assert [log["id"] for log in body["logs"]] == [newer.pk, older.pk]
    assert body["logs"][1] == {
        "id": older.pk,
        "timestamp": body["logs"][1]["timestamp"],
        "user": user.username,
        "action": "bot_start",
        "resource": "",
        "ip_address": "10.0.0.1",
        "status": "success",
        "details": {},
    }
    assert body["logs"][1]["timestamp"].startswith("2025-12-01T09:00:00")


@pytest.fixture
def december(user: Any, other_user: Any) -> dict[str, AuditLog]:
    """Rows around December 2025, by two users."""
    return {
        "nov30": record_at(datetime(2025, 11, 30, 23, 59, 59, tzinfo=UTC), user=user),
        "dec01": record_at(datetime(2025, 12, 1, 0, 0, tzinfo=UTC), user=user),
        "dec15": record_at(datetime(2025, 12, 15, 12, 0, tzinfo=UTC), user=other_user, action="bot_stop"),
        "dec31": record_at(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), user=user),
        "jan01": record_at(datetime(2026, 1, 1, 0, 0, tzinfo=UTC), user=user, action="bot_stop"),
    }


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {log["id"] for log in response.json()["logs"]}


def test_the_audit_log_filters_by_user(admin_api, december, other_user):
    response = admin_api.get(AUDIT, {"user": other_user.username})

    assert ids(response) == {december["dec15"].pk}
    assert response.json()["total"] == 1


def test_the_audit_log_filters_by_action(admin_api, december):
    response = admin_api.get(AUDIT, {"action": "bot_stop"})

    assert ids(response) == {december["dec15"].pk, december["jan01"].pk}


def test_bare_dates_bound_whole_days(admin_api, december):
    # when
    response = admin_api.get(AUDIT, {"start_date": "2025-12-01", "end_date": "2025-12-31"})

    # then: midnight on the first and 23:59:59 on the last day are both inside
    assert ids(response) == {december["dec01"].pk, december["dec15"].pk, december["dec31"].pk}


def test_iso_datetimes_bound_to_the_second(admin_api, december):
    # when
    response = admin_api.get(AUDIT, {"start_date": "2025-12-01T00:00:01Z", "end_date": "2025-12-31T23:59:58+00:00"})

    # then
    assert ids(response) == {december["dec15"].pk}


def test_a_datetime_with_any_offset_iso_allows_bounds_the_instant_it_names(admin_api, december):
    # when: 2025-12-01 00:00 at +23:00 is 2025-11-30 01:00 UTC (PostgreSQL itself refuses such offsets)
    response = admin_api.get(AUDIT, {"start_date": "2025-12-01T00:00:00+23:00", "end_date": "2025-11-30T23:59:59Z"})

    # then
    assert ids(response) == {december["nov30"].pk}


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+23:00", "9999-12-31T23:59:59-23:00"])
def test_a_datetime_outside_the_years_of_utc_is_a_422(admin_api, value):
    response = admin_api.get(AUDIT, {"start_date": value})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "start_date"]


def test_only_a_start_date_keeps_everything_after_it(admin_api, december):
    response = admin_api.get(AUDIT, {"start_date": "2025-12-31"})

    assert ids(response) == {december["dec31"].pk, december["jan01"].pk}


def test_filters_combine(admin_api, december, user):
    response = admin_api.get(
        AUDIT, {"user": user.username, "action": "bot_start", "start_date": "2025-12-01", "end_date": "2025-12-31"}
    )

    assert ids(response) == {december["dec01"].pk, december["dec31"].pk}


@pytest.mark.parametrize(
    ("name", "value"),
    [("start_date", "yesterday"), ("end_date", "2025-13-01"), ("start_date", "2025-12-01T25:00:00")],
)
def test_a_bad_date_is_a_422_about_the_query(admin_api, name, value):
    response = admin_api.get(AUDIT, {name: value})

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors
    assert errors[0]["loc"][0] == "query"
    assert errors[0]["loc"] == ["query", name]


def test_per_page_limits_a_page_and_page_walks_through_the_rest(admin_api, december):
    # when
    pages = [admin_api.get(AUDIT, {"per_page": 2, "page": page}).json() for page in (1, 2, 3, 4)]

    # then
    assert [len(page["logs"]) for page in pages] == [2, 2, 1, 0]
    assert all(page["total"] == 5 and page["per_page"] == 2 for page in pages)
    assert [page["page"] for page in pages] == [1, 2, 3, 4]
    walked = [log["id"] for page in pages for log in page["logs"]]
    newest_first = [row.pk for row in sorted(december.values(), key=lambda row: row.timestamp, reverse=True)]
    assert walked == newest_first


@pytest.mark.parametrize(("name", "value"), [("per_page", 0), ("per_page", 501), ("page", 0), ("page", "two")])
def test_out_of_range_paging_is_a_422_about_the_query(admin_api, name, value):
    response = admin_api.get(AUDIT, {name: value})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", name]


def test_a_non_superuser_sees_only_their_own_rows(user_api, december, user, other_user):
    # when
    everything = user_api.get(AUDIT)
    peeking = user_api.get(AUDIT, {"user": other_user.username})

    # then
    assert ids(everything) == {december[key].pk for key in ("nov30", "dec01", "dec31", "jan01")}
    assert {log["user"] for log in everything.json()["logs"]} == {user.username}
    assert everything.json()["total"] == 4
    assert ids(peeking) == set()


def test_a_superuser_sees_every_users_rows(admin_api, december, user, other_user):
    response = admin_api.get(AUDIT)

    assert ids(response) == {row.pk for row in december.values()}
    assert {log["user"] for log in response.json()["logs"]} == {user.username, other_user.username}


def test_the_audit_log_needs_authentication(api):
    assert api.get(AUDIT).status_code == 401


# Rows never change


@pytest.fixture
def row(user: Any) -> AuditLog:
    return audit_record(actor=Actor(user=user, ip_address="10.0.0.1"), action="bot_start", details={"n": 1})


def assert_unchanged(row: AuditLog) -> None:
    stored = AuditLog.objects.get(pk=row.pk)
    assert (stored.action, stored.status, stored.details) == ("bot_start", "success", {"n": 1})


def test_saving_an_existing_row_raises(row):
    row.status = "failure"

    with pytest.raises(AuditLogImmutable):
        row.save()

    assert_unchanged(row)


def test_deleting_a_row_raises(row):
    with pytest.raises(AuditLogImmutable):
        row.delete()

    assert_unchanged(row)


def test_queryset_updates_and_deletes_raise(row):
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=row.pk).update(status="failure")
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.all().delete()
    row.status = "failure"
    # bulk_update runs in its own atomic block without a savepoint; give it one.
    with pytest.raises(AuditLogImmutable), transaction.atomic():
        AuditLog.objects.bulk_update([row], ["status"])

    assert_unchanged(row)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE {table} SET status = 'failure' WHERE id = %s", "DELETE FROM {table} WHERE id = %s"],
    ids=["update", "delete"],
)
def test_the_database_refuses_raw_sql_that_changes_a_row(append_only_triggers, row, statement):
    # given
    table = connection.ops.quote_name(AuditLog._meta.db_table)

    # when / then
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(table=table), [row.pk])

    assert_unchanged(row)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_audit_api_has_no_way_to_write(admin_api, row, method):
    response = getattr(admin_api, method)(AUDIT, {"status": "failure"}, format="json")

    assert response.status_code == 405
    assert set(response.json()) == {"detail"}
    assert_unchanged(row)


def test_the_admin_permissions_refuse_add_change_and_delete_even_to_superusers(row, superuser):
    # given
    model_admin = admin.site._registry[AuditLog]
    request = RequestFactory().get("/admin/audit/auditlog/")
    request.user = superuser

    # then
    assert model_admin.has_view_permission(request, row) is True
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request, row) is False
    assert model_admin.has_delete_permission(request, row) is False


def test_the_admin_pages_refuse_add_change_and_delete_to_a_superuser(client, row, superuser):
    # given
    client.force_login(superuser)
    base = "/admin/audit/auditlog"

    # when
    add = client.get(f"{base}/add/")
    change = client.post(f"{base}/{row.pk}/change/", {"action": "edited", "status": "failure"})
    delete = client.post(f"{base}/{row.pk}/delete/", {"post": "yes"})
    listing = client.get(f"{base}/")

    # then
    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert listing.status_code == 200
    assert_unchanged(row)


def test_a_user_with_audit_rows_cannot_be_deleted(row, user):
    # Rows name users; a deleted user would orphan them, so users are deactivated instead.
    with pytest.raises(DatabaseError), transaction.atomic():
        type(user).objects.filter(pk=user.pk).delete()

    assert AuditLog.objects.get(pk=row.pk).user_id == user.pk


@pytest.mark.django_db
def test_a_page_beyond_any_audit_log_is_a_422_that_quotes_it(admin_api):
    response = admin_api.get("/api/v1/audit/", {"page": str(2**53)})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["query", "page"], str(2**53))
