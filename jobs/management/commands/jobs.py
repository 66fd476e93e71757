"""Jobs from the server's shell: prune the finished ones older than a bound, rows and files (``jobs_prune``)."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandParser

from jobs.services import jobs_prune
from multibot.management.subcommands import SubcommandCommand

_AGE = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``3600s``: more than zero."""
    match = _AGE.match(text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is no age: a number above zero and a unit, e.g. 30d, 12h, 2w")
    return timedelta(**{_UNIT[match[2]]: int(match[1])})


class Command(SubcommandCommand):
    help = "Prune finished jobs (completed, failed, cancelled) older than a bound: their rows and result files."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = self.add_subcommands(parser)
        prune = self.subcommand(subcommands, "prune", self.prune,
                                "Delete the jobs that finished before the bound: their rows (results, logs) and "
                                "their directories on this host. Never a queued or running job.")  # fmt: skip
        prune.add_argument("--older-than", type=age, required=True, metavar="AGE",
                           help="finished longer ago than this: 30d, 12h, 2w ...")  # fmt: skip
        prune.add_argument("--dry-run", action="store_true", help="change nothing; say what would go")
        prune.add_argument("--json", action="store_true")

    def prune(self, options: dict[str, Any]) -> None:
        done = jobs_prune(actor=self.actor, older_than=options["older_than"], dry_run=options["dry_run"])
        if options["json"]:
            self.write_json(done)
            return
        ids = done["job_ids"]
        shown = ", ".join(map(str, ids[:20])) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
        would = "would " if done["dry_run"] else ""
        jobs = f"{len(ids)} job(s) finished before {done['finished_before']}" + (f" ({shown})" if ids else "")
        files = f"{done['directories']} job directories on this host ({done['freed_bytes'] / 1e6:.1f} MB)"
        self.stdout.write(f"{'Would delete' if would else 'Deleted'} {jobs}; {would}remove {files}.")
