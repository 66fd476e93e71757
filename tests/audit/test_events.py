"""The audit event constructors: each writes its action, its resource and its details, read back from the database."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from audit import events
from audit.models import AuditLog
from audit.selectors import token_was_rotated
from audit.services import Actor
from bots.models import Bot
from streams.catalog import SYSTEM_EVENTS
from tests.factories import make_bot, make_user

Action = AuditLog.Action

pytestmark = pytest.mark.django_db


@dataclass
class World:
    actor: Actor
    user: Any
    bot: Bot


@pytest.fixture
def world(user: Any) -> World:
    return World(actor=Actor(user=user, ip_address="10.0.0.1"), user=user, bot=make_bot(owner=user, name="alpha"))


@dataclass
class Expected:
    action: str
    resource: str
    details: dict[str, Any]
    status: str = "success"
    user: Any = "the actor's"  # or the account a row names instead (a login names the account)


@dataclass
class Case:
    constructor: str
    write: Callable[[World], tuple[AuditLog, Expected]] = field(repr=False)


CASES: dict[str, Case] = {}


def case(constructor: Callable[..., AuditLog]) -> Callable[[Callable[[World], tuple[AuditLog, Expected]]], Any]:
    """Register a case: a function that writes one row with ``constructor`` and says what it must hold."""

    def register(write: Callable[[World], tuple[AuditLog, Expected]]) -> Any:
        CASES[write.__name__] = Case(constructor.__name__, write)
        return write

    return register


# -- accounts and sessions --------------------------------------------------------------------------
@case(events.login_succeeded_event)
def a_login(w: World) -> tuple[AuditLog, Expected]:
    account = make_user(username="alice")
    row = events.login_succeeded_event(actor=Actor(user=None, ip_address="10.0.0.1"), user=account)
    return row, Expected(Action.LOGIN, "", {"username": "alice"}, user=account)


@case(events.login_failed_event)
def a_wrong_password(w: World) -> tuple[AuditLog, Expected]:
    row = events.login_failed_event(
        actor=Actor(user=None, ip_address="10.0.0.1"),
        username=w.user.username,
        reason="bad_credentials",
        account=w.user,
    )
    return row, Expected(
        Action.LOGIN, "", {"username": w.user.username, "reason": "bad_credentials"}, status="failure", user=w.user
    )


@case(events.login_failed_event)
def a_login_to_a_locked_account(w: World) -> tuple[AuditLog, Expected]:
    row = events.login_failed_event(
        actor=Actor(user=None, ip_address="10.0.0.1"), username="nobody", reason="account_locked"
    )
    return row, Expected(
        Action.LOGIN, "", {"username": "nobody", "reason": "account_locked"}, status="denied", user=None
    )


@case(events.login_failed_event)
def wrong_basic_credentials(w: World) -> tuple[AuditLog, Expected]:
    row = events.login_failed_event(
        actor=Actor(user=None, ip_address="10.0.0.1"),
        username=w.user.username,
        reason="inactive_user",
        account=w.user,
        via="http_basic",
    )
    return row, Expected(
        Action.LOGIN,
        "",
        {"username": w.user.username, "reason": "inactive_user", "via": "http_basic"},
        status="failure",
        user=w.user,
    )


@case(events.token_refreshed_event)
def a_rotation(w: World) -> tuple[AuditLog, Expected]:
    row = events.token_refreshed_event(actor=w.actor, user=w.user, rotated_jti="jti-1")
    return row, Expected(Action.TOKEN_REFRESH, "", {"rotated_jti": "jti-1"})


@case(events.refresh_token_reused_event)
def a_reused_refresh_token(w: World) -> tuple[AuditLog, Expected]:
    row = events.refresh_token_reused_event(actor=w.actor, user=w.user, sessions_revoked=3)
    return row, Expected(
        Action.TOKEN_REFRESH, "", {"reason": "reused_refresh_token", "sessions_revoked": 3}, status="denied"
    )


@case(events.logged_out_event)
def a_logout(w: World) -> tuple[AuditLog, Expected]:
    return events.logged_out_event(actor=w.actor, jti="jti-2"), Expected(Action.LOGOUT, "", {"jti": "jti-2"})


@case(events.user_created_event)
def a_user_created(w: World) -> tuple[AuditLog, Expected]:
    created = make_user(username="bob")
    row = events.user_created_event(actor=w.actor, user=created)
    return row, Expected(Action.USER_CREATE, f"user:{created.pk}", {"username": "bob", "is_superuser": False})


@case(events.user_created_event)
def the_first_superuser(w: World) -> tuple[AuditLog, Expected]:
    created = make_user(username="root", is_superuser=True)
    row = events.user_created_event(actor=Actor.system(), user=created, via="bootstrap")
    return row, Expected(
        Action.USER_CREATE,
        f"user:{created.pk}",
        {"username": "root", "is_superuser": True, "via": "bootstrap"},
        user=None,
    )


@case(events.user_deactivated_event)
def a_user_deactivated(w: World) -> tuple[AuditLog, Expected]:
    target = make_user(username="carol")
    row = events.user_deactivated_event(actor=w.actor, user=target, sessions_revoked=2)
    return row, Expected(Action.USER_DEACTIVATE, f"user:{target.pk}", {"username": "carol", "sessions_revoked": 2})


@case(events.user_activated_event)
def a_user_activated(w: World) -> tuple[AuditLog, Expected]:
    target = make_user(username="dave")
    row = events.user_activated_event(actor=w.actor, user=target)
    return row, Expected(Action.USER_ACTIVATE, f"user:{target.pk}", {"username": "dave"})


@case(events.user_admin_saved_event)
def a_user_changed_in_the_admin(w: World) -> tuple[AuditLog, Expected]:
    row = events.user_admin_saved_event(actor=w.actor, user=w.user, created=False, changed_fields=("email",))
    return row, Expected(
        Action.USER_UPDATE, f"user:{w.user.pk}", {"username": w.user.username, "via": "admin", "changed": ["email"]}
    )


@case(events.user_admin_saved_event)
def a_user_added_in_the_admin(w: World) -> tuple[AuditLog, Expected]:
    row = events.user_admin_saved_event(actor=w.actor, user=w.user, created=True, changed_fields=[])
    return row, Expected(
        Action.USER_CREATE, f"user:{w.user.pk}", {"username": w.user.username, "via": "admin", "changed": []}
    )


# -- bots: their rows ---------------------------------------------------------------------------------
@case(events.bot_created_event)
def a_bot_created(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_created_event(actor=w.actor, bot=w.bot, changes={"name": "alpha", "exchange_key": "<set>"})
    return row, Expected(
        Action.BOT_CREATE, f"bot:{w.bot.pk}", {"bot_name": "alpha", "name": "alpha", "exchange_key": "<set>"}
    )


@case(events.bot_updated_event)
def a_bot_updated(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_updated_event(actor=w.actor, bot=w.bot, changes={"stake_amount": "250"})
    return row, Expected(
        Action.BOT_UPDATE, f"bot:{w.bot.pk}", {"bot_name": "alpha", "changes": {"stake_amount": "250"}}
    )


@case(events.bot_moved_event)
def a_bot_moved(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_moved_event(actor=w.actor, bot=w.bot, from_host="alpha", to_host="beta")
    return row, Expected(
        Action.BOT_UPDATE, f"bot:{w.bot.pk}", {"bot_name": "alpha", "changes": {"host": "beta"}, "moved_from": "alpha"}
    )


@case(events.bot_deleted_event)
def a_stopped_bot_deleted(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_deleted_event(
        actor=w.actor, bot_id=41, bot_name="gone", strategy_name="SampleStrategy", exchange="replay"
    )
    return row, Expected(
        Action.BOT_DELETE, "bot:41", {"bot_name": "gone", "strategy_name": "SampleStrategy", "exchange": "replay"}
    )


@case(events.bot_delete_pending_event)
def a_running_bot_asked_to_be_deleted(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_delete_pending_event(actor=w.actor, bot=w.bot)
    return row, Expected(
        Action.BOT_DELETE,
        f"bot:{w.bot.pk}",
        {
            "bot_name": "alpha",
            "strategy_name": w.bot.strategy_name,
            "exchange": w.bot.exchange,
            "pending": "stopping the bot first",
        },
    )


@case(events.bot_deleted_after_stop_event)
def a_bot_deleted_once_stopped(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_deleted_after_stop_event(actor=Actor.system(), bot_id=42, bot_name="late")
    return row, Expected(Action.BOT_DELETE, "bot:42", {"bot_name": "late", "after": "the bot stopped"}, user=None)


@case(events.bot_admin_saved_event)
def a_bot_changed_in_the_admin(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_admin_saved_event(actor=w.actor, bot=w.bot, created=False, changed_fields=["timeframe"])
    return row, Expected(
        Action.BOT_UPDATE, f"bot:{w.bot.pk}", {"bot_name": "alpha", "via": "admin", "changed": ["timeframe"]}
    )


@case(events.bot_admin_saved_event)
def a_bot_added_in_the_admin(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_admin_saved_event(actor=w.actor, bot=w.bot, created=True, changed_fields=["name"])
    return row, Expected(
        Action.BOT_CREATE, f"bot:{w.bot.pk}", {"bot_name": "alpha", "via": "admin", "changed": ["name"]}
    )


@case(events.bot_admin_deleted_event)
def a_bot_deleted_in_the_admin(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_admin_deleted_event(actor=w.actor, bot_id=43, bot_name="old")
    return row, Expected(Action.BOT_DELETE, "bot:43", {"bot_name": "old", "via": "admin"})


# -- bots: commands and what the gateway did -------------------------------------------------------------
GATEWAY = Actor(user=None, ip_address=None, name="gateway")


def _command_case(command: str) -> None:
    def write(w: World) -> tuple[AuditLog, Expected]:
        row = events.bot_command_event(actor=w.actor, bot=w.bot, command=command)
        return row, Expected(command, f"bot:{w.bot.pk}", {"bot_name": "alpha"})

    write.__name__ = f"a_{command}_command"
    case(events.bot_command_event)(write)


for _command in ("bot_start", "bot_stop", "bot_restart", "bot_kill"):
    _command_case(_command)


@case(events.bot_command_event)
def a_first_start_that_placed_the_bot(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_command_event(actor=w.actor, bot=w.bot, command="bot_start", placed_on="beta")
    return row, Expected("bot_start", f"bot:{w.bot.pk}", {"bot_name": "alpha", "placed_on": "beta"})


@case(events.emergency_stop_all_event)
def an_emergency_stop_of_the_fleet(w: World) -> tuple[AuditLog, Expected]:
    row = events.emergency_stop_all_event(actor=w.actor, bot_ids=(w.bot.pk, 99), force_exit=True)
    return row, Expected(Action.EMERGENCY_STOP_ALL, "bots", {"bot_ids": [w.bot.pk, 99], "force_exit": True})


@case(events.bot_started_event)
def the_gateway_started_a_bot(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_started_event(actor=GATEWAY, bot=w.bot, outcome="started", reason="command")
    return row, Expected(
        Action.BOT_START, f"bot:{w.bot.pk}", {"bot_name": "alpha", "outcome": "started", "reason": "command"}, user=None
    )


@case(events.bot_start_failed_event)
def the_gateway_could_not_launch_a_bot(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_start_failed_event(actor=GATEWAY, bot=w.bot, error="strategy missing")
    return row, Expected(
        Action.BOT_START,
        f"bot:{w.bot.pk}",
        {"bot_name": "alpha", "error": "strategy missing"},
        status="failure",
        user=None,
    )


@case(events.bot_start_unreadable_event)
def the_gateway_could_not_load_a_bot_to_start(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_start_unreadable_event(actor=GATEWAY, bot_id=w.bot.pk, error="the bot's settings cannot be read")
    return row, Expected(
        Action.BOT_START,
        f"bot:{w.bot.pk}",
        {"error": "the bot's settings cannot be read"},
        status="failure",
        user=None,
    )


@case(events.emergency_stop_entries_event)
def entries_stopped(w: World) -> tuple[AuditLog, Expected]:
    row = events.emergency_stop_entries_event(actor=GATEWAY, bot=w.bot)
    return row, Expected(
        Action.EMERGENCY_STOP_ENTRIES, f"bot:{w.bot.pk}", {"bot_name": "alpha", "error": ""}, user=None
    )


@case(events.emergency_stop_entries_event)
def entries_not_stopped(w: World) -> tuple[AuditLog, Expected]:
    row = events.emergency_stop_entries_event(actor=GATEWAY, bot=w.bot, error="bot did not answer")
    return row, Expected(
        Action.EMERGENCY_STOP_ENTRIES,
        f"bot:{w.bot.pk}",
        {"bot_name": "alpha", "error": "bot did not answer"},
        status="failure",
        user=None,
    )


@case(events.emergency_force_exit_all_event)
def trades_force_exited(w: World) -> tuple[AuditLog, Expected]:
    row = events.emergency_force_exit_all_event(actor=GATEWAY, bot=w.bot)
    return row, Expected(
        Action.EMERGENCY_FORCE_EXIT_ALL, f"bot:{w.bot.pk}", {"bot_name": "alpha", "error": ""}, user=None
    )


@case(events.emergency_force_exit_all_event)
def trades_not_force_exited(w: World) -> tuple[AuditLog, Expected]:
    row = events.emergency_force_exit_all_event(actor=GATEWAY, bot=w.bot, error="exchange down")
    return row, Expected(
        Action.EMERGENCY_FORCE_EXIT_ALL,
        f"bot:{w.bot.pk}",
        {"bot_name": "alpha", "error": "exchange down"},
        status="failure",
        user=None,
    )


@case(events.bot_strays_killed_event)
def strays_killed(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_strays_killed_event(actor=GATEWAY, pids=[4242, 4343])
    return row, Expected(Action.BOT_STRAY_KILL, "bots", {"pids": [4242, 4343]}, user=None)


@case(events.bot_api_login_event)
def a_login_to_a_bots_freqtrade_api(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_api_login_event(actor=w.actor, bot=w.bot)
    return row, Expected(
        Action.LOGIN, f"bot:{w.bot.pk}", {"username": w.user.username, "bot_name": "alpha", "via": "freqtrade_token"}
    )


@case(events.bot_api_token_refreshed_event)
def a_bots_freqtrade_token_refreshed(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_api_token_refreshed_event(actor=w.actor, bot=w.bot)
    return row, Expected(Action.TOKEN_REFRESH, f"bot:{w.bot.pk}", {"bot_name": "alpha", "via": "freqtrade_token"})


@case(events.bot_passthrough_event)
def a_call_a_bot_accepted(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_passthrough_event(actor=w.actor, bot=w.bot, method="POST", ft_path="/api/v1/stop", status_code=200)
    return row, Expected(
        Action.BOT_FT_PASSTHROUGH,
        f"bot:{w.bot.pk}",
        {"bot_name": "alpha", "method": "POST", "ft_path": "/api/v1/stop", "status_code": 200},
    )


@case(events.bot_passthrough_event)
def a_call_a_bot_refused(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_passthrough_event(
        actor=w.actor, bot=w.bot, method="DELETE", ft_path="/api/v1/trades/9", status_code=400
    )
    return row, Expected(
        Action.BOT_FT_PASSTHROUGH,
        f"bot:{w.bot.pk}",
        {"bot_name": "alpha", "method": "DELETE", "ft_path": "/api/v1/trades/9", "status_code": 400},
        status="failure",
    )


# -- market data and streams -----------------------------------------------------------------------------
@case(events.candles_uploaded_event)
def candles_uploaded(w: World) -> tuple[AuditLog, Expected]:
    row = events.candles_uploaded_event(
        actor=w.actor,
        exchange="replay",
        pair="BTC/USDT",
        timeframe="5m",
        source="upload",
        changes={"added": 10, "updated": 2, "records": 12},
    )
    return row, Expected(
        Action.DATA_UPLOAD,
        "data:replay:BTC/USDT:5m",
        {"pair": "BTC/USDT", "timeframe": "5m", "source": "upload", "added": 10, "updated": 2, "records": 12},
    )


@case(events.strategy_uploaded_event)
def strategy_uploaded(w: World) -> tuple[AuditLog, Expected]:
    from strategies.models import Strategy, StrategyVersion

    strategy = Strategy.objects.create(owner=w.user, name="MyStrategy")
    version = StrategyVersion.objects.create(strategy=strategy, sha256="ab" * 32, size=120)
    row = events.strategy_uploaded_event(actor=w.actor, version=version, new_version=True)
    return row, Expected(
        Action.STRATEGY_UPLOAD,
        "strategy:MyStrategy",
        {"strategy_name": "MyStrategy", "sha256": "ab" * 32, "size": 120, "parameters": False, "new_version": True,
         "builtin": False},
    )  # fmt: skip


@case(events.strategy_deleted_event)
def strategy_deleted(w: World) -> tuple[AuditLog, Expected]:
    row = events.strategy_deleted_event(actor=w.actor, name="MyStrategy", owner="alice", versions=2)
    return row, Expected(
        Action.STRATEGY_DELETE, "strategy:MyStrategy", {"strategy_name": "MyStrategy", "owner": "alice", "versions": 2}
    )


@case(events.dead_letters_replayed_event)
def dead_letters_replayed(w: World) -> tuple[AuditLog, Expected]:
    row = events.dead_letters_replayed_event(
        actor=w.actor,
        stream=SYSTEM_EVENTS,
        replayed=[{"dead_letter_id": "1-0", "message_id": "9-0"}],
        not_found=["2-0"],
        not_replayable=("3-0",),
    )
    return row, Expected(
        Action.DEAD_LETTER_REPLAY,
        "stream:system:events",
        {"replayed": [{"dead_letter_id": "1-0", "message_id": "9-0"}], "not_found": ["2-0"], "not_replayable": ["3-0"]},
    )


@case(events.dead_letters_purged_event)
def some_dead_letters_purged(w: World) -> tuple[AuditLog, Expected]:
    row = events.dead_letters_purged_event(actor=w.actor, stream=SYSTEM_EVENTS, purged=1, message_ids=["1-0"])
    return row, Expected(Action.DEAD_LETTER_PURGE, "stream:system:events", {"purged": 1, "message_ids": ["1-0"]})


@case(events.dead_letters_purged_event)
def every_dead_letter_purged(w: World) -> tuple[AuditLog, Expected]:
    row = events.dead_letters_purged_event(actor=w.actor, stream=SYSTEM_EVENTS, purged=7, message_ids=None)
    return row, Expected(Action.DEAD_LETTER_PURGE, "stream:system:events", {"purged": 7, "message_ids": "all"})


# -- jobs -----------------------------------------------------------------------------------------------
def _job(w: World, **fields: Any) -> Any:
    from jobs.models import Job

    values = {"owner": w.user, "kind": "backtest", "parameters": {"strategy_name": "Crossing"}, **fields}
    return Job.objects.create(**values)


@case(events.job_created_event)
def a_job_created(w: World) -> tuple[AuditLog, Expected]:
    job = _job(w)
    row = events.job_created_event(actor=w.actor, job=job)
    return row, Expected(Action.JOB_CREATE, f"job:{job.pk}", {"kind": "backtest", "parameters": job.parameters})


@case(events.job_cancelled_event)
def a_job_cancelled(w: World) -> tuple[AuditLog, Expected]:
    job = _job(w, status="running")
    row = events.job_cancelled_event(actor=w.actor, job=job, was="running")
    return row, Expected(Action.JOB_CANCEL, f"job:{job.pk}", {"kind": "backtest", "was": "running"})


@case(events.job_started_event)
def a_job_started(w: World) -> tuple[AuditLog, Expected]:
    job = _job(w, status="running", attempt=1, worker_host="w1:7")
    row = events.job_started_event(actor=Actor.system(), job=job)
    expected = Expected(Action.JOB_START, f"job:{job.pk}", {"kind": "backtest", "attempt": 1, "worker_host": "w1:7"},
                        user=None)  # fmt: skip
    return row, expected


@case(events.job_finished_event)
def a_job_failed(w: World) -> tuple[AuditLog, Expected]:
    job = _job(w, status="failed", attempt=2, error="freqtrade exited with 2")
    row = events.job_finished_event(actor=Actor.system(), job=job)
    details = {"kind": "backtest", "status": "failed", "attempt": 2, "error": "freqtrade exited with 2"}
    return row, Expected(Action.JOB_FINISH, f"job:{job.pk}", details, status="failure", user=None)


@case(events.job_requeued_event)
def a_job_requeued(w: World) -> tuple[AuditLog, Expected]:
    job = _job(w, attempt=1)
    row = events.job_requeued_event(actor=Actor.system(), job=job, reason="worker lost")
    details = {"kind": "backtest", "attempt": 1, "reason": "worker lost"}
    return row, Expected(Action.JOB_REQUEUE, f"job:{job.pk}", details, user=None)


@case(events.jobs_pruned_event)
def jobs_pruned(w: World) -> tuple[AuditLog, Expected]:
    bound = "2026-11-01T00:00:00+00:00"
    row = events.jobs_pruned_event(actor=Actor.operator("jobs prune"), job_ids=[3, 4], finished_before=bound,
                                   directories=2, freed_bytes=4096)  # fmt: skip
    details = {"job_ids": [3, 4], "finished_before": bound, "directories": 2, "freed_bytes": 4096}
    return row, Expected(Action.JOB_PRUNE, "job", details, user=None)


def _freqai_model(w: World) -> Any:
    from freqai.models import FreqaiModel

    return FreqaiModel.objects.create(owner=w.user, name="lgbm", model_type="LightGBMRegressor",
                                      strategy_name="FreqaiExampleStrategy")  # fmt: skip


@case(events.freqai_model_created_event)
def a_freqai_model_created(w: World) -> tuple[AuditLog, Expected]:
    model = _freqai_model(w)
    row = events.freqai_model_created_event(actor=w.actor, model=model, parameters={"model_type": "LightGBMRegressor"})
    details = {"name": "lgbm", "parameters": {"model_type": "LightGBMRegressor"}}
    return row, Expected(Action.FREQAI_MODEL_CREATE, f"freqai_model:{model.pk}", details)


@case(events.freqai_model_updated_event)
def a_freqai_model_updated(w: World) -> tuple[AuditLog, Expected]:
    model = _freqai_model(w)
    row = events.freqai_model_updated_event(actor=w.actor, model=model, changed={"train_period_days": 14})
    details = {"name": "lgbm", "changed": {"train_period_days": 14}}
    return row, Expected(Action.FREQAI_MODEL_UPDATE, f"freqai_model:{model.pk}", details)


@case(events.freqai_model_deleted_event)
def a_freqai_model_deleted(w: World) -> tuple[AuditLog, Expected]:
    row = events.freqai_model_deleted_event(actor=w.actor, model_id=7, name="lgbm", versions=2, detached_bots=["a"])
    details = {"name": "lgbm", "versions": 2, "detached_bots": ["a"]}
    return row, Expected(Action.FREQAI_MODEL_DELETE, "freqai_model:7", details)


@case(events.bot_model_reloaded_event)
def a_bot_model_reloaded(w: World) -> tuple[AuditLog, Expected]:
    row = events.bot_model_reloaded_event(actor=w.actor, bot=w.bot, model_id=7, from_version=1, to_version=2,
                                          restarted=True)  # fmt: skip
    details = {"bot_name": "alpha", "model_id": 7, "from_version": 1, "to_version": 2, "restarted": True}
    return row, Expected(Action.BOT_RELOAD_MODEL, f"bot:{w.bot.pk}", details)


@case(events.hyperopt_applied_event)
def a_hyperopt_applied(w: World) -> tuple[AuditLog, Expected]:
    from strategies.models import Strategy, StrategyVersion

    job = _job(w, kind="hyperopt", status="completed", results={"best_result": {"loss": -1.5, "params": {"x": 3}}})
    strategy = Strategy.objects.create(owner=w.user, name="Crossing")
    version = StrategyVersion.objects.create(strategy=strategy, sha256="cd" * 32, size=90, parameters_sha256="ef" * 32)
    row = events.hyperopt_applied_event(actor=w.actor, job=job, version=version, new_version=True)
    details = {"strategy_name": "Crossing", "sha256": "cd" * 32, "parameters_sha256": "ef" * 32, "new_version": True,
               "loss": -1.5}  # fmt: skip
    return row, Expected(Action.HYPEROPT_APPLY, f"job:{job.pk}", details)


# -- live updates -----------------------------------------------------------------------------------------
@case(events.ws_ticket_issued_event)
def a_ws_ticket_issued(w: World) -> tuple[AuditLog, Expected]:
    row = events.ws_ticket_issued_event(actor=w.actor, expires_in=30)
    return row, Expected(Action.WS_TICKET, f"user:{w.user.pk}", {"expires_in": 30})


# -- the tests --------------------------------------------------------------------------------------------
def constructors() -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(events, inspect.isfunction)
        if name.endswith("_event") and value.__module__ == events.__name__
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_constructor_writes_its_action_resource_and_details(world, name):
    # when
    row, expected = CASES[name].write(world)

    # then: as stored, not as held in memory
    stored = AuditLog.objects.get(pk=row.pk)
    assert stored.action == expected.action
    assert stored.action in AuditLog.Action.values
    assert stored.status == expected.status
    assert stored.resource == expected.resource
    assert stored.details == expected.details
    account = world.user if expected.user == "the actor's" else expected.user
    assert stored.user_id == getattr(account, "pk", None)
    assert stored.ip_address == row.ip_address


def test_every_constructor_has_a_case():
    assert {case.constructor for case in CASES.values()} == constructors()


@pytest.mark.parametrize("command", ["emergency_stop", "bot_create", "start"])
def test_a_bot_command_event_refuses_what_is_not_a_lifecycle_command(world, command):
    before = AuditLog.objects.count()

    with pytest.raises(ValueError, match=command):
        events.bot_command_event(actor=world.actor, bot=world.bot, command=command)

    assert AuditLog.objects.count() == before


def test_a_bot_command_event_takes_a_command_kind_whose_value_is_the_action(world):
    # given: any enum member, as a command definition would hold it
    import enum

    class Kind(enum.Enum):
        STOP = "bot_stop"

    # when
    row = events.bot_command_event(actor=world.actor, bot=world.bot, command=Kind.STOP)

    # then
    assert AuditLog.objects.get(pk=row.pk).action == "bot_stop"


def test_a_rotation_row_tells_a_rotated_token_from_a_revoked_one(world, other_user):
    # given
    events.token_refreshed_event(actor=world.actor, user=world.user, rotated_jti="rotated")
    events.refresh_token_reused_event(actor=world.actor, user=world.user, sessions_revoked=1)

    # then: only a successful rotation of that user's token counts
    assert token_was_rotated(user=world.user, jti="rotated") is True
    assert token_was_rotated(user=world.user, jti="logged-out") is False
    assert token_was_rotated(user=other_user, jti="rotated") is False


def test_a_constructors_row_is_known_to_the_middleware(world):
    # A constructor goes through audit_record: the actor notes the row, so the middleware adds none.
    row = events.logged_out_event(actor=world.actor, jti="j")

    assert (row.pk, "success") in world.actor.recorded
