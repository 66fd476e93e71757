"""Accounts from the server's shell: create, list, deactivate and re-activate users (``bootstrap`` makes the first).

The same services as ``/api/v1/users/``, audited as the operator who ran the command.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from multibot.management.subcommands import SubcommandCommand
from multibot.services import users

User = get_user_model()
LIST_COLUMNS = ("id", "username", "email", "full_name", "is_active", "is_superuser", "last_login", "date_joined")


class Command(SubcommandCommand):
    help = "Create, list, deactivate or activate user accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = self.add_subcommands(parser)
        text = "Create a user; without --password-stdin a password is generated and shown once."
        create = self.subcommand(subcommands, "create", self.create, text)
        create.add_argument("username")
        create.add_argument("--email", default="")
        create.add_argument("--full-name", default="")
        create.add_argument("--superuser", action="store_true", help="a superuser: sees and controls every bot")
        create.add_argument("--password-stdin", action="store_true",
                            help="read the password from the first line of standard input")  # fmt: skip
        listing = self.subcommand(subcommands, "list", self.list, "List every user.")
        listing.add_argument("--json", action="store_true")
        for name, run, text in (("deactivate", self.deactivate, "Refuse the user's every request from now on and "
                                 "end all their sessions (users are never deleted: audit rows name them)."),
                                ("activate", self.activate, "Let a deactivated user log in again.")):  # fmt: skip
            self.subcommand(subcommands, name, run, text).add_argument("username")

    def create(self, options: dict[str, Any]) -> None:
        if options["password_stdin"]:
            password = self.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: standard input held no password.")
        else:
            password = users.password_generate()
        taken = User.objects.filter(username__iexact=options["username"]).first()
        if taken is not None:  # the service refuses it too; this says which account it is
            raise CommandError(f"A user named {taken.username!r} already exists; nothing was changed.")
        user = users.user_create(actor=self.actor, username=options["username"], password=password,
                                 email=options["email"], full_name=options["full_name"],
                                 is_superuser=options["superuser"], via="manage.py")  # fmt: skip
        kind = "superuser" if user.is_superuser else "user"
        self.stdout.write(self.style.SUCCESS(f"Created {kind} {user.username!r} (id {user.pk})."))
        if not options["password_stdin"]:
            # Shown this once, never stored in clear: the last line, so a script can take it.
            self.stdout.write(f"Its generated password (shown only now): {password}")

    def list(self, options: dict[str, Any]) -> None:
        rows = list(User.objects.order_by("id").values(*LIST_COLUMNS))
        if options["json"]:
            self.write_json(rows)
        else:
            self.write_table(rows, LIST_COLUMNS, empty="No users.")

    def deactivate(self, options: dict[str, Any]) -> None:
        user = self.user_named(options["username"])
        if not user.is_active:
            raise CommandError(f"User {user.username!r} is already deactivated.")
        users.user_deactivate(actor=self.actor, user=user)
        self.stdout.write(f"Deactivated {user.username!r}: every session of theirs is ended.")

    def activate(self, options: dict[str, Any]) -> None:
        user = self.user_named(options["username"])
        if user.is_active:
            raise CommandError(f"User {user.username!r} is already active.")
        users.user_activate(actor=self.actor, user=user)
        self.stdout.write(f"Activated {user.username!r}.")
