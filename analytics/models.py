"""Trade: one freqtrade trade of one bot, as collected from the bot's API by the gateway."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Trade(models.Model):
    # A deleted bot's trades stay: they are the user's profit and loss history (real money for a
    # live bot), and the bot's own freqtrade database goes with its directory. The name is copied
    # so such a row still reads; ``owner`` keeps it in its owner's figures.
    bot = models.ForeignKey("bots.Bot", null=True, blank=True, on_delete=models.SET_NULL, related_name="trades")
    bot_name = models.CharField(max_length=64)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trades")
    trade_id = models.IntegerField(help_text="freqtrade's own id of the trade, unique within its bot")

    pair = models.CharField(max_length=64)
    is_open = models.BooleanField()
    is_short = models.BooleanField(default=False)
    # freqtrade's values are floats (its own columns are REAL). Stored as floats they come back
    # bit for bit on SQLite and PostgreSQL, so a re-sent trade compares equal and changes nothing.
    amount = models.FloatField(help_text="the filled amount: 0 while the entry order waits to fill")
    stake_amount = models.FloatField()
    open_rate = models.FloatField()
    close_rate = models.FloatField(null=True, blank=True)
    open_date = models.DateTimeField()
    close_date = models.DateTimeField(null=True, blank=True)
    # Realised profit, set once the trade is closed (an open trade's profit moves with every tick).
    profit_abs = models.FloatField(null=True, blank=True)
    profit_ratio = models.FloatField(null=True, blank=True)
    exit_reason = models.CharField(max_length=128, blank=True)

    # Copied from the bot when the trade is first collected: figures are kept apart per stake
    # currency and for dry and live, whatever the bot is configured as later.
    stake_currency = models.CharField(max_length=16)
    dry_run = models.BooleanField()

    # freqtrade's trade as last collected (for an open trade: /status's answer, live profit included).
    raw = models.JSONField(default=dict)
    # The gateway's clock when it read the applied report: an older report arriving late is ignored.
    observed_at = models.FloatField(default=0)
    collected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-open_date", "-id"]
        constraints = [models.UniqueConstraint(fields=["bot", "trade_id"], name="trade_unique_per_bot")]
        indexes = [
            models.Index(fields=["owner", "close_date"], name="trade_owner_close_date"),
            models.Index(fields=["bot", "is_open"], name="trade_bot_is_open"),
        ]

    def __str__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"{self.bot_name} #{self.trade_id} {self.pair} {self.side} ({state})"

    @property
    def is_filled(self) -> bool:
        return self.amount > 0

    @property
    def side(self) -> str:
        return "short" if self.is_short else "long"

    @property
    def entry_side(self) -> str:
        """The order side that opens the trade, as freqtrade names it."""
        return "sell" if self.is_short else "buy"

    @property
    def exit_side(self) -> str:
        return "buy" if self.is_short else "sell"


class BotBalance(models.Model):
    """A bot's wallet as freqtrade itself last valued it (its ``/balance``), read by the gateway.

    One row per bot, replaced by each newer report; the portfolio is summed from these rows and is
    never recomputed from trades. ``open_trades`` holds each open trade's current rate and
    unrealised profit from the same moment (``{trade_id: {current_rate, profit_abs, profit_ratio}}``).
    """

    # The current balance of a bot that no longer exists is nobody's: it goes with the bot.
    bot = models.OneToOneField("bots.Bot", primary_key=True, on_delete=models.CASCADE, related_name="balance")
    stake_currency = models.CharField(max_length=16)
    total = models.FloatField(help_text="freqtrade's total: every currency held, valued in the stake currency")
    free = models.FloatField(help_text="the stake currency not held by an order")
    starting_capital = models.FloatField(help_text="freqtrade's own starting capital of the bot")
    currencies = models.JSONField(default=list)
    open_trades = models.JSONField(default=dict)
    # The gateway's clock when it read the balance: an older report arriving late is ignored.
    observed_at = models.FloatField()
    read_at = models.DateTimeField(help_text="when the gateway read it")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"bot {self.bot_id}: {self.total} {self.stake_currency}"
