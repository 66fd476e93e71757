"""AuditLog: one row per mutating request and per command outcome; rows are never changed."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models


class AuditLogImmutable(Exception):  # noqa: N818 - reads as the condition it reports
    """Raised on any attempt to change or delete an audit row."""


class AuditLogQuerySet(models.QuerySet["AuditLog"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogImmutable("audit rows cannot be updated")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise AuditLogImmutable("audit rows cannot be deleted")


class AuditLog(models.Model):
    class Action(models.TextChoices):
        """Every action a row can name; audit/events.py has one constructor per kind of event."""

        # Accounts and sessions
        LOGIN = "login"
        TOKEN_REFRESH = "token_refresh"
        LOGOUT = "logout"
        USER_CREATE = "user_create"
        USER_UPDATE = "user_update"
        USER_ACTIVATE = "user_activate"
        USER_DEACTIVATE = "user_deactivate"
        # Bots: their rows, the commands sent to the gateway, and what the gateway did
        BOT_CREATE = "bot_create"
        BOT_UPDATE = "bot_update"
        BOT_DELETE = "bot_delete"
        BOT_START = "bot_start"
        BOT_STOP = "bot_stop"
        BOT_RESTART = "bot_restart"
        BOT_KILL = "bot_kill"
        # A fleet request records one row per bot; these name the request when no bot's row exists
        # (refused before the service, or a fleet of no bots).
        BOT_START_ALL = "bot_start_all"
        BOT_STOP_ALL = "bot_stop_all"
        BOT_RESTART_ALL = "bot_restart_all"
        BOT_FT_PASSTHROUGH = "bot_ft_passthrough"
        BOT_STRAY_KILL = "bot_stray_kill"
        EMERGENCY_STOP_ALL = "emergency_stop_all"
        EMERGENCY_STOP_ENTRIES = "emergency_stop_entries"
        EMERGENCY_FORCE_EXIT_ALL = "emergency_force_exit_all"
        # Market data
        DATA_UPLOAD = "data_upload"
        # Strategies: uploads (a new version, or the same bytes again) and deletions
        STRATEGY_UPLOAD = "strategy_upload"
        STRATEGY_DELETE = "strategy_delete"
        # Streams
        DEAD_LETTER_REPLAY = "dead_letter_replay"
        DEAD_LETTER_PURGE = "dead_letter_purge"
        # Jobs (backtests, hyperopt, ...): what a user asked, and what the workers did
        JOB_CREATE = "job_create"
        JOB_CANCEL = "job_cancel"
        JOB_START = "job_start"
        JOB_FINISH = "job_finish"
        JOB_REQUEUE = "job_requeue"
        # Finished jobs older than a bound deleted by an operator (rows and their files)
        JOB_PRUNE = "job_prune"
        FREQAI_MODEL_CREATE = "freqai_model_create"
        FREQAI_MODEL_UPDATE = "freqai_model_update"
        FREQAI_MODEL_DELETE = "freqai_model_delete"
        # A bot pinned to its model's newest ready version (POST /bots/{bot}/reload-model)
        BOT_RELOAD_MODEL = "bot_reload_model"
        # A hyperopt's best parameters stored as a new version of its strategy
        HYPEROPT_APPLY = "hyperopt_apply"
        # A WebSocket ticket issued (POST /ws/ticket): who opened live updates, and from where
        WS_TICKET = "ws_ticket"
        # A mutating request that no view names: a method a path does not serve, an unknown path.
        API_REQUEST = "api_request"

    class Status(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"  # refused: bad input, wrong password, conflict
        DENIED = "denied"  # not authenticated, not permitted, rate limited
        ERROR = "error"  # the server failed

    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    # Users with audit rows are deactivated, never deleted (rows cannot change); the username is
    # copied so a row reads on its own.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    username = models.CharField(max_length=150, blank=True, db_index=True)
    action = models.CharField(max_length=64, db_index=True, choices=Action.choices)
    resource = models.CharField(max_length=128, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["user", "-timestamp"])]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.status}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AuditLogImmutable("audit rows cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogImmutable("audit rows cannot be deleted")
