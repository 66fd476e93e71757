"""What is stored: one row per (exchange, pair, timeframe) file of candles, kept in step with the file."""

from __future__ import annotations

from django.db import models


class CandleSet(models.Model):
    class Source(models.TextChoices):
        DEMO = "demo"  # the deterministic generator
        UPLOAD = "upload"  # a user's CSV

    exchange = models.CharField(max_length=32, default="replay")
    pair = models.CharField(max_length=40)
    timeframe = models.CharField(max_length=4)
    start = models.DateTimeField()
    end = models.DateTimeField()  # open time of the newest candle
    records = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=Source.choices)
    synthetic = models.BooleanField(default=False)
    # The file's own bytes: a worker on another host fetches the file and checks it against these.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    size = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["exchange", "pair", "timeframe"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "pair", "timeframe"], name="one_candle_set_per_file"),
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.pair} {self.timeframe}"
