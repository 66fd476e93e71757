"""The fleet from the server's shell: list bots, start, stop or restart them, stop everything in an emergency.

The same services as the API (``bot_command``, ``fleet_command``, ``emergency_stop_all``), so each
command is audited, recorded as the bot's desired state and sent to its gateway through the outbox,
exactly as a request would be; the actor is the operator who ran it. An operator sees every bot.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from bots import services
from bots.commands import BotStatus
from bots.commands import Command as Lifecycle
from bots.selectors import bot_fleet_by_id_or_name, bot_fleet_list, bot_fleet_rows
from multibot.errors import NotFoundError
from multibot.management.subcommands import SubcommandCommand
from streams.outbox import outbox_pending

LIST_COLUMNS = ("id", "name", "owner", "status", "desired_state", "host", "pid", "since")
LIFECYCLE = {"start": Lifecycle.START, "stop": Lifecycle.STOP, "restart": Lifecycle.RESTART}


class Command(SubcommandCommand):
    help = "List the bots, start, stop or restart them, or stop every bot at once in an emergency."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = self.add_subcommands(parser)
        listing = self.subcommand(subcommands, "list", self.list, "List the bots with their status.")
        listing.add_argument("--owner", metavar="USERNAME", help="only this user's bots")
        listing.add_argument("--status", choices=BotStatus.values)
        listing.add_argument("--json", action="store_true")
        for name, command in LIFECYCLE.items():
            text = f"Send a {name} to one bot (by id or name), or to every bot with --all."
            each = self.subcommand(subcommands, name, self.lifecycle, text)
            each.set_defaults(command=command)
            target = each.add_mutually_exclusive_group(required=True)
            target.add_argument("bot", nargs="?", metavar="BOT", help="the bot's id or name")
            target.add_argument("--all", action="store_true", help="every bot (of --owner)")
            each.add_argument("--owner", metavar="USERNAME", help="look the bot up among this user's bots only")
            each.add_argument("--json", action="store_true")
        text = ("Stop every bot (of --owner) at once: no new entries, optionally every open trade force-exited, "
                "then terminate and kill. Asks first unless --yes.")  # fmt: skip
        emergency = self.subcommand(subcommands, "emergency-stop", self.emergency_stop, text)
        emergency.add_argument("--owner", metavar="USERNAME", help="only this user's bots")
        emergency.add_argument("--force-exit", action="store_true", help="force-exit every open trade first")
        emergency.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        emergency.add_argument("--json", action="store_true")

    def _owner(self, options: dict[str, Any]) -> Any:
        return self.user_named(options["owner"]) if options["owner"] else None

    def list(self, options: dict[str, Any]) -> None:
        rows = bot_fleet_rows(owner=self._owner(options), status=options["status"])
        if options["json"]:
            self.write_json(rows)
        else:
            self.write_table(rows, LIST_COLUMNS, empty="No bots.")

    def lifecycle(self, options: dict[str, Any]) -> None:
        owner, command = self._owner(options), options["command"]
        if options["all"]:
            results = services.fleet_command(actor=self.actor, bots=bot_fleet_list(owner=owner), command=command)
        else:
            try:
                bot = bot_fleet_by_id_or_name(key=options["bot"], owner=owner)
            except NotFoundError:
                of = f" of {owner.username!r}" if owner else ""
                raise CommandError(f"No bot{of} has the id or name {options['bot']!r}.") from None
            results = [services.bot_command(actor=self.actor, bot=bot, command=command)]
        if options["json"]:
            self.write_json(results if options["all"] else results[0])
        else:
            for result in results:
                refused = f" ({result['detail']})" if result["status"] == "refused" else ""
                self.stdout.write(f"bot {result['bot_id']} {result['bot_name']!r}: {result['status']}{refused}")
            if not results:
                self.stdout.write("No bots.")
        self._warn_if_waiting()

    def emergency_stop(self, options: dict[str, Any]) -> None:
        owner = self._owner(options)
        bots = bot_fleet_list(owner=owner)
        names = list(bots.order_by("id").values_list("name", flat=True))
        if not names:
            self.stdout.write("No bots to stop.")
            return
        if not options["yes"]:
            scope = f"of {owner.username!r}" if owner else "of every owner"
            trades = ", every open trade force-exited" if options["force_exit"] else ""
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            if not self.confirm(f"Emergency stop of {len(names)} bot(s) {scope}{trades}: {shown}."):
                raise CommandError("Not confirmed: nothing was sent.")
        outcome = services.emergency_stop_all(actor=self.actor, bots=bots, force_exit=options["force_exit"])
        if options["json"]:
            self.write_json(outcome)
        else:
            for bot in outcome["bots"]:
                self.stdout.write(f"bot {bot['bot_id']} {bot['bot_name']!r} (was {bot['was']}): {bot['status']}")
            self.stdout.write(self.style.WARNING(f"Emergency stop sent for {outcome['total']} bot(s)."))
        self._warn_if_waiting()

    def _warn_if_waiting(self) -> None:
        waiting = outbox_pending()["waiting"]
        if waiting:
            self.stderr.write(f"{waiting} command(s) wait in the outbox: Redis did not take them now. The listeners "
                              "(manage.py run_listeners) send them once it answers.")  # fmt: skip
