"""The bus from the server's shell: each stream's length, each group's lag and pending entries, dead letters.

The figures are ``streams.health.bus_health``'s (what ``GET /api/v1/health/streams`` shows), read from
Redis; with the commands still waiting in the outbox for it.
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from multibot.management.subcommands import SubcommandCommand
from multibot.redis_client import redis_client, redis_url_for_display
from streams.health import bus_health
from streams.outbox import outbox_pending


class Command(SubcommandCommand):
    help = "Show the Redis streams: length, lag and pending entries per consumer group, dead letters."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = self.add_subcommands(parser)
        text = ("Every stream's length, each group's lag and pending entries, dead letters, and the commands "
                "waiting in the outbox. Exit 1 when Redis does not answer.")  # fmt: skip
        status = self.subcommand(subcommands, "status", self.status, text)
        status.add_argument("--json", action="store_true")

    def status(self, options: dict[str, Any]) -> None:
        try:
            # The patient client first: bus_health's own check gives up after a tenth of a second.
            redis_client().ping()
        except redis.RedisError as exc:
            where = redis_url_for_display(settings.REDIS_URL)
            raise CommandError(f"Redis at {where} does not answer ({exc}); is the system running?") from exc
        # No throughput sample of our own: reading the bus does not write to it.
        report = {**bus_health(sample=False), "outbox": outbox_pending()}
        if not report["redis_connected"]:
            raise CommandError("; ".join(report["system_health"]["issues"]))
        if options["json"]:
            self.write_json(report)
            return
        self.write_report(report)

    def write_report(self, report: dict[str, Any]) -> None:
        rows = []
        for name, stream in report["streams"].items():
            # A stream no group reads yet still gets its line.
            for group, figures in (stream["groups"] or {"-": {}}).items():
                rows.append({
                    "stream": name, "length": f"{stream['length']}/{stream['maxlen']}",
                    "dead_letters": stream["dlq"]["total_messages"], "group": group,
                    "consumers": figures.get("consumers"), "lag": figures.get("lag"), "pending": figures.get("pending"),
                })  # fmt: skip
        self.write_table(rows, ("stream", "length", "dead_letters", "group", "consumers", "lag", "pending"),
                         empty="No streams.")  # fmt: skip
        health, outbox = report["system_health"], report["outbox"]
        self.stdout.write("")
        oldest = f" (oldest {outbox['oldest']:%Y-%m-%d %H:%M:%S})" if outbox["oldest"] else ""
        self.stdout.write(f"listeners running: {report['active_listeners']}; "
                          f"commands waiting in the outbox: {outbox['waiting']}{oldest}")  # fmt: skip
        verdict = health["overall_status"]
        style = self.style.SUCCESS if verdict == "healthy" else self.style.WARNING
        self.stdout.write(style(f"{verdict}: {health['total_dlq_messages']} dead letter(s), "
                                f"total lag {health['total_lag']}"))  # fmt: skip
        for issue in health["issues"]:
            self.stdout.write(f"  - {issue}")
