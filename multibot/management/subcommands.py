"""The shape of the operator commands (``manage.py bots list``, ``manage.py jobs prune``): subcommands.

Each subcommand is a method that calls the app's services and selectors, like an API view, as an
``Actor.operator`` (no account, named by the command and the login it ran under). Exit codes: 0 done,
1 refused or failed (CommandError, its sentence on stderr), 2 a usage error (argparse's own).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from audit.services import Actor
from multibot.errors import DomainError, InvalidInputError

Run = Callable[[dict[str, Any]], None]


class SubcommandCommand(BaseCommand):
    # call_command(..., stdin=io.StringIO("yes\n")): what a test types at a prompt or pipes in.
    stealth_options = ("stdin",)

    def add_subcommands(self, parser: CommandParser) -> Any:
        return parser.add_subparsers(dest="subcommand", required=True, metavar="subcommand")

    def subcommand(self, subparsers: Any, name: str, run: Run, help: str) -> CommandParser:
        parser = subparsers.add_parser(name, help=help, description=help)
        parser.set_defaults(run=run)
        return parser

    @property
    def command_name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]

    def handle(self, *args: Any, **options: Any) -> None:
        self.options = options
        self.actor = Actor.operator(f"{self.command_name} {options['subcommand']}")
        try:
            options["run"](options)
        except InvalidInputError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def user_named(self, username: str) -> Any:
        from django.contrib.auth import get_user_model

        found = get_user_model().objects.filter(username=username).first()
        if found is None:
            raise CommandError(f"No user is named {username!r}.")
        return found

    # -- input and output ------------------------------------------------------------------------
    @property
    def stdin(self) -> IO[str]:
        return self.options.get("stdin") or sys.stdin

    def confirm(self, question: str) -> bool:
        """``question``, then True only for a typed "yes" (an empty stdin, as in cron, is a no). Asked on
        stderr: stdout stays the answer alone (``--json``)."""
        self.stderr.write(f"{question} Type 'yes' to go on: ", ending="")
        self.stderr.flush()
        return self.stdin.readline().strip().lower() == "yes"

    def write_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2))

    def write_table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str) -> None:
        """Aligned columns for a reader on a terminal (``--json`` is for programs)."""
        if not rows:
            self.stdout.write(empty)
            return
        cells = [[_cell(row[column]) for column in columns] for row in rows]
        widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(columns)]
        for line in [[column.upper() for column in columns], *cells]:
            self.stdout.write("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="seconds")
    return str(value)
