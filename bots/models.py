"""The Bot: one freqtrade trading process, its configuration and its private API credentials."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from bots.commands import ACTIVE_STATUSES, BotStatus, DesiredState
from multibot.fields import EncryptedTextField


class Bot(models.Model):
    # Defined with the trading protocol (bots/commands.py); named here too for the model's readers.
    Status = BotStatus
    DesiredState = DesiredState
    ACTIVE_STATUSES = ACTIVE_STATUSES

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=64)
    strategy_name = models.CharField(max_length=100)
    exchange = models.CharField(max_length=32, default="replay")
    stake_currency = models.CharField(max_length=16, default="USDT")
    # Null is freqtrade's "unlimited": each trade stakes what the wallet allows.
    stake_amount = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    timeframe = models.CharField(max_length=4, default="5m")
    pair_whitelist = models.JSONField(default=list, blank=True)
    max_open_trades = models.IntegerField(default=3)
    dry_run = models.BooleanField(default=True)
    # The FreqAI model the bot runs, and the version of it (pinned on attach and by reload-model).
    freqai_model = models.ForeignKey("freqai.FreqaiModel", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="running_bots")  # fmt: skip
    freqai_version = models.PositiveIntegerField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STOPPED, db_index=True)
    # What the user asked for: the gateway restarts a crashed bot only while this is RUNNING.
    desired_state = models.CharField(max_length=16, choices=DesiredState.choices, default=DesiredState.STOPPED)
    pid = models.IntegerField(null=True, blank=True)
    # With the pid, identifies the process across gateway restarts (a reused pid has another create time).
    pid_create_time = models.FloatField(null=True, blank=True)
    host = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Two heartbeats, each named for whose it is: the gateway's (it saw the process, in its snapshot)
    # and the bot's own (its freqtrade API answered the gateway's liveness probe).
    gateway_seen_at = models.DateTimeField(null=True, blank=True)
    api_answered_at = models.DateTimeField(null=True, blank=True)
    status_detail = models.TextField(blank=True)
    restart_count = models.IntegerField(default=0)
    # When the gateway observed the status we hold: an older event arriving late is ignored.
    status_at = models.FloatField(default=0)
    # Deleting a running bot stops it first; the row goes once the gateway reports it stopped.
    delete_requested = models.BooleanField(default=False)
    total_trades = models.IntegerField(default=0)
    profitable_trades = models.IntegerField(default=0)
    total_profit = models.DecimalField(max_digits=24, decimal_places=8, default=0)

    # Live trading credentials: encrypted at rest, write-only through the API.
    exchange_key = EncryptedTextField(blank=True, default="")
    exchange_secret = EncryptedTextField(blank=True, default="")

    # The bot's own freqtrade API server: generated, never leaves the server.
    api_port = models.PositiveIntegerField(unique=True)
    api_username = models.CharField(max_length=64)
    api_password = EncryptedTextField()
    jwt_secret_key = EncryptedTextField()
    ws_token = EncryptedTextField()

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="bot_name_unique_per_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def has_exchange_keys(self) -> bool:
        return bool(self.exchange_key and self.exchange_secret)

    def secret_values(self) -> list[str]:
        """Every credential of this bot; short values could match ordinary text, generated ones are long."""
        values = (self.api_password, self.jwt_secret_key, self.ws_token, self.api_username, self.exchange_key,
                  self.exchange_secret)  # fmt: skip
        return [value for value in values if value and len(value) >= 8]

    def mask_secrets(self, text: str) -> str:
        """freqtrade may print config values in its errors: never show them back."""
        for secret in self.secret_values():
            text = text.replace(secret, "********")
        return text


class Host(models.Model):
    """A machine with a gateway: registered by its first heartbeat, kept up to date by every one after.

    Its capacity is what its gateway says it can hold (``bot_slots``, from MULTIBOT_GATEWAY_BOT_SLOTS
    or its memory) and has (memory, cores); it is live while its heartbeats keep coming.
    """

    name = models.CharField(max_length=255, unique=True)
    bot_slots = models.PositiveIntegerField(default=0)
    memory_total_mb = models.PositiveIntegerField(default=0)
    memory_available_mb = models.PositiveIntegerField(default=0)
    cpus = models.PositiveIntegerField(default=0)
    # The ports its bots' API servers take there (0, 0: not said, by a gateway older than this field).
    api_port_first = models.PositiveIntegerField(default=0)
    api_port_last = models.PositiveIntegerField(default=0)
    registered_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    # The gateway process behind the heartbeats (a new one after each restart).
    gateway_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
