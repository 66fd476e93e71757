"""One constructor per kind of audit event: its action, its resource and the shape of its details.

Call these, not ``audit_record``: a caller says what happened, in the domain's words, and the row
is written the same way wherever it happens. Each constructor runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from audit.models import AuditLog
from audit.resources import (
    FLEET,
    Kind,
    bot_resource,
    data_resource,
    freqai_model_resource,
    job_resource,
    resource,
    strategy_resource,
    stream_resource,
    user_resource,
)
from audit.services import Actor, audit_record

if TYPE_CHECKING:
    from bots.models import Bot
    from freqai.models import FreqaiModel
    from jobs.models import Job
    from multibot.models import User
    from strategies.models import StrategyVersion

Action = AuditLog.Action
Status = AuditLog.Status

# The lifecycle commands a user sends to a bot; each is audited under its own action.
BOT_COMMAND_ACTIONS = frozenset({Action.BOT_START, Action.BOT_STOP, Action.BOT_RESTART, Action.BOT_KILL})

LoginFailure = Literal["bad_credentials", "inactive_user", "account_locked"]


# -- accounts and sessions --------------------------------------------------------------------------
def login_succeeded_event(*, actor: Actor, user: User) -> AuditLog:
    return audit_record(actor=actor, action=Action.LOGIN, user=user, details={"username": user.get_username()})


def login_failed_event(
    *, actor: Actor, username: str, reason: LoginFailure, account: User | None = None, via: str = ""
) -> AuditLog:
    """A refused login; ``account`` is the user the username names, if any. A locked account is a denial."""
    status = Status.DENIED if reason == "account_locked" else Status.FAILURE
    details: dict[str, Any] = {"username": username, "reason": reason}
    if via:
        details["via"] = via  # credentials sent with a request (http_basic), not to the login endpoint
    return audit_record(actor=actor, action=Action.LOGIN, status=status, user=account, details=details)


def token_refreshed_event(*, actor: Actor, user: User, rotated_jti: str) -> AuditLog:
    """A rotation; ``rotated_jti`` names the retired token (audit.selectors.token_was_rotated reads it)."""
    return audit_record(actor=actor, action=Action.TOKEN_REFRESH, user=user, details={"rotated_jti": rotated_jti})


def refresh_token_reused_event(*, actor: Actor, user: User, sessions_revoked: int) -> AuditLog:
    return audit_record(
        actor=actor,
        action=Action.TOKEN_REFRESH,
        status=Status.DENIED,
        user=user,
        details={"reason": "reused_refresh_token", "sessions_revoked": sessions_revoked},
    )


def logged_out_event(*, actor: Actor, jti: str) -> AuditLog:
    return audit_record(actor=actor, action=Action.LOGOUT, details={"jti": jti})


def user_created_event(*, actor: Actor, user: User, via: str = "") -> AuditLog:
    details: dict[str, Any] = {"username": user.get_username(), "is_superuser": bool(user.is_superuser)}
    if via:
        details["via"] = via
    return audit_record(actor=actor, action=Action.USER_CREATE, resource=user_resource(user.pk), details=details)


def user_deactivated_event(*, actor: Actor, user: User, sessions_revoked: int) -> AuditLog:
    return audit_record(
        actor=actor,
        action=Action.USER_DEACTIVATE,
        resource=user_resource(user.pk),
        details={"username": user.get_username(), "sessions_revoked": sessions_revoked},
    )


def user_activated_event(*, actor: Actor, user: User) -> AuditLog:
    return audit_record(
        actor=actor,
        action=Action.USER_ACTIVATE,
        resource=user_resource(user.pk),
        details={"username": user.get_username()},
    )


def user_admin_saved_event(*, actor: Actor, user: User, created: bool, changed_fields: Sequence[str]) -> AuditLog:
    """A user saved in the Django admin. Field names only: a password change must not log its hash."""
    return audit_record(
        actor=actor,
        action=Action.USER_CREATE if created else Action.USER_UPDATE,
        resource=user_resource(user.pk),
        details={"username": user.get_username(), "via": "admin", "changed": list(changed_fields)},
    )


# -- bots: their rows ---------------------------------------------------------------------------------
def bot_created_event(*, actor: Actor, bot: Bot, changes: Mapping[str, Any]) -> AuditLog:
    """``changes``: the fields as given, JSON-ready, secrets already reduced to ``<set>``/``<cleared>``."""
    return audit_record(
        actor=actor, action=Action.BOT_CREATE, resource=bot_resource(bot.pk), details={"bot_name": bot.name, **changes}
    )


def bot_updated_event(*, actor: Actor, bot: Bot, changes: Mapping[str, Any]) -> AuditLog:
    """``changes``: the fields that changed, as for ``bot_created_event``."""
    return audit_record(
        actor=actor,
        action=Action.BOT_UPDATE,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "changes": dict(changes)},
    )


def bot_deleted_event(*, actor: Actor, bot_id: int, bot_name: str, strategy_name: str, exchange: str) -> AuditLog:
    """A stopped bot deleted at once. Takes the id: a deleted row has none left."""
    return audit_record(
        actor=actor,
        action=Action.BOT_DELETE,
        resource=bot_resource(bot_id),
        details={"bot_name": bot_name, "strategy_name": strategy_name, "exchange": exchange},
    )


def bot_delete_pending_event(*, actor: Actor, bot: Bot) -> AuditLog:
    """A running bot asked to be deleted: it is stopped first, then deleted (``bot_deleted_after_stop_event``)."""
    return audit_record(
        actor=actor,
        action=Action.BOT_DELETE,
        resource=bot_resource(bot.pk),
        details={
            "bot_name": bot.name,
            "strategy_name": bot.strategy_name,
            "exchange": bot.exchange,
            "pending": "stopping the bot first",
        },
    )


def bot_deleted_after_stop_event(*, actor: Actor, bot_id: int, bot_name: str) -> AuditLog:
    return audit_record(
        actor=actor,
        action=Action.BOT_DELETE,
        resource=bot_resource(bot_id),
        details={"bot_name": bot_name, "after": "the bot stopped"},
    )


def bot_admin_saved_event(*, actor: Actor, bot: Bot, created: bool, changed_fields: Sequence[str]) -> AuditLog:
    """A bot saved in the Django admin; field names only (the admin never shows secrets)."""
    return audit_record(
        actor=actor,
        action=Action.BOT_CREATE if created else Action.BOT_UPDATE,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "via": "admin", "changed": list(changed_fields)},
    )


def bot_admin_deleted_event(*, actor: Actor, bot_id: int, bot_name: str) -> AuditLog:
    return audit_record(
        actor=actor,
        action=Action.BOT_DELETE,
        resource=bot_resource(bot_id),
        details={"bot_name": bot_name, "via": "admin"},
    )


# -- bots: commands and what the gateway did -------------------------------------------------------------
def bot_command_event(*, actor: Actor, bot: Bot, command: str, placed_on: str = "") -> AuditLog:
    """A lifecycle command sent to the gateway; ``command`` is one of ``BOT_COMMAND_ACTIONS``.
    ``placed_on``: the host the command placed the bot on (its first start)."""
    action = Action(getattr(command, "value", command))  # a command kind's value is its action's
    if action not in BOT_COMMAND_ACTIONS:
        raise ValueError(f"{command!r} is not a bot command")
    details = {"bot_name": bot.name, **({"placed_on": placed_on} if placed_on else {})}
    return audit_record(actor=actor, action=action, resource=bot_resource(bot.pk), details=details)


def bot_moved_event(*, actor: Actor, bot: Bot, from_host: str, to_host: str) -> AuditLog:
    """A stopped bot placed on another host: an update of its ``host``, saying where it was."""
    return audit_record(
        actor=actor,
        action=Action.BOT_UPDATE,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "changes": {"host": to_host}, "moved_from": from_host},
    )


def emergency_stop_all_event(*, actor: Actor, bot_ids: Sequence[int], force_exit: bool) -> AuditLog:
    return audit_record(
        actor=actor,
        action=Action.EMERGENCY_STOP_ALL,
        resource=FLEET,
        details={"bot_ids": list(bot_ids), "force_exit": force_exit},
    )


def bot_started_event(*, actor: Actor, bot: Bot, outcome: str, reason: str) -> AuditLog:
    """The gateway started (or found started) a bot; ``outcome`` is the supervisor's word for it."""
    return audit_record(
        actor=actor,
        action=Action.BOT_START,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "outcome": outcome, "reason": reason},
    )


def bot_start_failed_event(*, actor: Actor, bot: Bot, error: str) -> AuditLog:
    """The gateway could not even launch the bot (its workspace could not be prepared)."""
    return audit_record(
        actor=actor,
        action=Action.BOT_START,
        status=Status.FAILURE,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "error": error},
    )


def bot_start_unreadable_event(*, actor: Actor, bot_id: int, error: str) -> AuditLog:
    """The gateway could not start the bot because its row cannot be loaded: only its id is known."""
    return audit_record(
        actor=actor,
        action=Action.BOT_START,
        status=Status.FAILURE,
        resource=bot_resource(bot_id),
        details={"error": error},
    )


def _emergency_step(action: AuditLog.Action, actor: Actor, bot: Bot, error: str) -> AuditLog:
    return audit_record(
        actor=actor,
        action=action,
        status=Status.FAILURE if error else Status.SUCCESS,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "error": error},
    )


def emergency_stop_entries_event(*, actor: Actor, bot: Bot, error: str = "") -> AuditLog:
    """An emergency stop's first step: the bot was told to open no new trade; ``error`` when it refused."""
    return _emergency_step(Action.EMERGENCY_STOP_ENTRIES, actor, bot, error)


def emergency_force_exit_all_event(*, actor: Actor, bot: Bot, error: str = "") -> AuditLog:
    """An emergency stop's optional step: every open trade force-exited; ``error`` when it failed."""
    return _emergency_step(Action.EMERGENCY_FORCE_EXIT_ALL, actor, bot, error)


def bot_strays_killed_event(*, actor: Actor, pids: Sequence[int]) -> AuditLog:
    return audit_record(actor=actor, action=Action.BOT_STRAY_KILL, resource=FLEET, details={"pids": list(pids)})


def bot_passthrough_event(*, actor: Actor, bot: Bot, method: str, ft_path: str, status_code: int) -> AuditLog:
    """A mutating call passed on to a bot's own freqtrade API; the bot's refusal is a failure."""
    return audit_record(
        actor=actor,
        action=Action.BOT_FT_PASSTHROUGH,
        status=Status.SUCCESS if status_code < 400 else Status.FAILURE,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "method": method, "ft_path": ft_path, "status_code": status_code},
    )


# The ``via`` of logins to one bot's freqtrade API through the pass-through (FreqUI's token/login).
FREQTRADE_TOKEN = "freqtrade_token"


def bot_api_login_event(*, actor: Actor, bot: Bot) -> AuditLog:
    """A login to one bot's freqtrade API (its token/login, answered by Multibot): tokens for that bot only.

    A refused password is ``login_failed_event`` with ``via: freqtrade_token``, written by the check itself.
    """
    username = actor.user.get_username() if actor.user is not None else ""
    return audit_record(
        actor=actor,
        action=Action.LOGIN,
        resource=bot_resource(bot.pk),
        details={"username": username, "bot_name": bot.name, "via": FREQTRADE_TOKEN},
    )


def bot_api_token_refreshed_event(*, actor: Actor, bot: Bot) -> AuditLog:
    """A new access token for one bot's freqtrade API from its refresh token (which stays valid: not rotated)."""
    return audit_record(
        actor=actor,
        action=Action.TOKEN_REFRESH,
        resource=bot_resource(bot.pk),
        details={"bot_name": bot.name, "via": FREQTRADE_TOKEN},
    )


# -- market data ---------------------------------------------------------------------------------------
def candles_uploaded_event(
    *, actor: Actor, exchange: str, pair: str, timeframe: str, source: str, changes: Mapping[str, int]
) -> AuditLog:
    """Candles stored; ``changes`` is what the merge did (``added``, ``updated``, ``records``)."""
    return audit_record(
        actor=actor,
        action=Action.DATA_UPLOAD,
        resource=data_resource(exchange=exchange, pair=pair, timeframe=timeframe),
        details={"pair": pair, "timeframe": timeframe, "source": source, **changes},
    )


# -- strategies ----------------------------------------------------------------------------------------
def strategy_uploaded_event(*, actor: Actor, version: StrategyVersion, new_version: bool) -> AuditLog:
    """An accepted upload; ``new_version`` False when the same code and parameters were already stored."""
    strategy = version.strategy
    return audit_record(
        actor=actor,
        action=Action.STRATEGY_UPLOAD,
        resource=strategy_resource(strategy.name),
        details={
            "strategy_name": strategy.name,
            "sha256": version.sha256,
            "size": version.size,
            "parameters": bool(version.parameters),
            "new_version": new_version,
            "builtin": strategy.owner_id is None,
        },
    )


def strategy_deleted_event(*, actor: Actor, name: str, owner: str, versions: int) -> AuditLog:
    """``owner``: the username of whose strategy it was (a superuser may delete another user's)."""
    return audit_record(
        actor=actor,
        action=Action.STRATEGY_DELETE,
        resource=strategy_resource(name),
        details={"strategy_name": name, "owner": owner, "versions": versions},
    )


# -- streams -------------------------------------------------------------------------------------------
def dead_letters_replayed_event(
    *,
    actor: Actor,
    stream: str,
    replayed: Sequence[Mapping[str, str]],
    not_found: Sequence[str],
    not_replayable: Sequence[str],
) -> AuditLog:
    """``replayed``: ``{dead_letter_id, message_id}`` of each dead letter put back on ``stream``."""
    return audit_record(
        actor=actor,
        action=Action.DEAD_LETTER_REPLAY,
        resource=stream_resource(stream),
        details={
            "replayed": [dict(item) for item in replayed],
            "not_found": list(not_found),
            "not_replayable": list(not_replayable),
        },
    )


def dead_letters_purged_event(*, actor: Actor, stream: str, purged: int, message_ids: Sequence[str] | None) -> AuditLog:
    """``message_ids`` None: the whole dead-letter stream was purged."""
    return audit_record(
        actor=actor,
        action=Action.DEAD_LETTER_PURGE,
        resource=stream_resource(stream),
        details={"purged": purged, "message_ids": list(message_ids) if message_ids else "all"},
    )


# -- jobs ----------------------------------------------------------------------------------------------
def job_created_event(*, actor: Actor, job: Job) -> AuditLog:
    return audit_record(
        actor=actor,
        action=Action.JOB_CREATE,
        resource=job_resource(job.pk),
        details={"kind": job.kind, "parameters": job.parameters},
    )


def job_cancelled_event(*, actor: Actor, job: Job, was: str) -> AuditLog:
    """``was``: the status the job had when it was cancelled (a running one is stopped by its worker)."""
    return audit_record(
        actor=actor, action=Action.JOB_CANCEL, resource=job_resource(job.pk), details={"kind": job.kind, "was": was}
    )


def job_started_event(*, actor: Actor, job: Job) -> AuditLog:
    """A worker claimed the job and started its attempt."""
    return audit_record(
        actor=actor,
        action=Action.JOB_START,
        resource=job_resource(job.pk),
        details={"kind": job.kind, "attempt": job.attempt, "worker_host": job.worker_host},
    )


def job_finished_event(*, actor: Actor, job: Job) -> AuditLog:
    """The job ended: completed, failed (with its error) or cancelled."""
    return audit_record(
        actor=actor,
        action=Action.JOB_FINISH,
        status=Status.FAILURE if job.status == "failed" else Status.SUCCESS,
        resource=job_resource(job.pk),
        details={"kind": job.kind, "status": job.status, "attempt": job.attempt, "error": job.error[:1000]},
    )


def job_requeued_event(*, actor: Actor, job: Job, reason: str) -> AuditLog:
    """A job put back in the queue: its worker was lost, or no worker took its command."""
    return audit_record(
        actor=actor,
        action=Action.JOB_REQUEUE,
        resource=job_resource(job.pk),
        details={"kind": job.kind, "attempt": job.attempt, "reason": reason},
    )


def jobs_pruned_event(
    *, actor: Actor, job_ids: Sequence[int], finished_before: str, directories: int, freed_bytes: int
) -> AuditLog:
    """Finished jobs deleted (``job_ids``, may be none) with their directories on this host; ``directories``
    counts those removed, left behind by jobs already gone included. ``finished_before``: the bound, ISO."""
    return audit_record(
        actor=actor,
        action=Action.JOB_PRUNE,
        resource=resource(Kind.JOB),
        details={"job_ids": list(job_ids), "finished_before": finished_before, "directories": directories,
                 "freed_bytes": freed_bytes},
    )  # fmt: skip


def hyperopt_applied_event(*, actor: Actor, job: Job, version: StrategyVersion, new_version: bool) -> AuditLog:
    """A hyperopt's best parameters stored as a version of its strategy; ``new_version`` False when that
    version (the same code and parameters) was already stored."""
    return audit_record(
        actor=actor,
        action=Action.HYPEROPT_APPLY,
        resource=job_resource(job.pk),
        details={
            "strategy_name": version.strategy.name,
            "sha256": version.sha256,
            "parameters_sha256": version.parameters_sha256,
            "new_version": new_version,
            "loss": ((job.results or {}).get("best_result") or {}).get("loss"),
        },
    )


# -- FreqAI models ------------------------------------------------------------------------------------
def freqai_model_created_event(*, actor: Actor, model: FreqaiModel, parameters: Mapping[str, Any]) -> AuditLog:
    return audit_record(actor=actor, action=Action.FREQAI_MODEL_CREATE, resource=freqai_model_resource(model.pk),
                        details={"name": model.name, "parameters": dict(parameters)})  # fmt: skip


def freqai_model_updated_event(*, actor: Actor, model: FreqaiModel, changed: Mapping[str, Any]) -> AuditLog:
    """``changed``: each field given, with its new value."""
    return audit_record(actor=actor, action=Action.FREQAI_MODEL_UPDATE, resource=freqai_model_resource(model.pk),
                        details={"name": model.name, "changed": dict(changed)})  # fmt: skip


def freqai_model_deleted_event(*, actor: Actor, model_id: int, name: str, versions: int,
                               detached_bots: Sequence[str] = ()) -> AuditLog:  # fmt: skip
    """``detached_bots``: the stopped bots that used the model and now have none."""
    return audit_record(actor=actor, action=Action.FREQAI_MODEL_DELETE, resource=freqai_model_resource(model_id),
                        details={"name": name, "versions": versions, "detached_bots": list(detached_bots)})  # fmt: skip


def bot_model_reloaded_event(*, actor: Actor, bot: Bot, model_id: int, from_version: int | None,
                             to_version: int, restarted: bool) -> AuditLog:  # fmt: skip
    """A bot pinned to its model's newest ready version; ``restarted``: it was running, and a restart was sent."""
    return audit_record(actor=actor, action=Action.BOT_RELOAD_MODEL, resource=bot_resource(bot.pk),
                        details={"bot_name": bot.name, "model_id": model_id, "from_version": from_version,
                                 "to_version": to_version, "restarted": restarted})  # fmt: skip


# -- live updates -------------------------------------------------------------------------------------
def ws_ticket_issued_event(*, actor: Actor, expires_in: int) -> AuditLog:
    """A WebSocket ticket was issued to the actor; the ticket itself is a credential and is not recorded."""
    return audit_record(actor=actor, action=Action.WS_TICKET, resource=user_resource(actor.user.pk),
                        details={"expires_in": expires_in})  # fmt: skip
