"""manage.py bots: the fleet from the server's shell, through the services the API uses, audited as the operator."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditLog
from audit.services import Actor
from bots.commands import BotStatus, Command, DesiredState
from bots.models import Bot
from multibot.redis_client import redis_client
from strategies.library import install_builtin_strategies
from streams.bus import stream_key
from streams.catalog import TRADING_COMMANDS
from streams.models import OutboxEntry
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


@pytest.fixture
def library() -> None:
    """The built-in strategies: a start checks that the bot's is stored."""
    install_builtin_strategies()


@pytest.fixture
def bots_cli(django_capture_on_commit_callbacks):
    """``manage.py bots ...`` in this process, its commits' callbacks (the outbox's send) run as they would."""

    def run(*args: str, stdin: str | None = None, stderr: io.StringIO | None = None) -> str:
        out = io.StringIO()
        extra = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
        with django_capture_on_commit_callbacks(execute=True):
            call_command("bots", *args, stdout=out, stderr=stderr or io.StringIO(), **extra)
        return out.getvalue()

    return run


def sent_commands() -> list[tuple[str, dict]]:
    entries = redis_client().xrange(stream_key(TRADING_COMMANDS))
    return [(fields["type"], json.loads(fields["payload"])) for _, fields in entries]


def desired(*bots: Bot) -> list[str]:
    return [Bot.objects.get(pk=bot.pk).desired_state for bot in bots]


def test_list_shows_every_owners_bots_with_their_state(bots_cli, user, other_user):
    # given
    mine = make_bot(owner=user, name="alpha")
    theirs = make_bot(owner=other_user, name="beta")
    Bot.objects.filter(pk=theirs.pk).update(status=BotStatus.RUNNING, desired_state=DesiredState.RUNNING, pid=4242,
                                            host="h1", status_at=1_800_000_000.0)  # fmt: skip

    # when
    rows = json.loads(bots_cli("list", "--json"))
    running = json.loads(bots_cli("list", "--json", "--status", "running"))
    of_user = json.loads(bots_cli("list", "--json", "--owner", user.username))
    table = bots_cli("list")

    # then
    assert rows == [
        {"id": mine.pk, "name": "alpha", "owner": user.username, "status": "stopped", "desired_state": "stopped",
         "host": "", "pid": None, "since": None},
        # running without a recorded start: since the gateway's report
        {"id": theirs.pk, "name": "beta", "owner": other_user.username, "status": "running",
         "desired_state": "running", "host": "h1", "pid": 4242, "since": "2027-01-15T08:00:00Z"},
    ]  # fmt: skip
    assert [row["id"] for row in running] == [theirs.pk]
    assert [row["id"] for row in of_user] == [mine.pk]
    header, _alpha, beta = table.splitlines()
    assert header.split() == ["ID", "NAME", "OWNER", "STATUS", "DESIRED_STATE", "HOST", "PID", "SINCE"]
    assert beta.split() == [str(theirs.pk), "beta", other_user.username, "running", "running", "h1", "4242",
                              "2027-01-15T08:00:00+00:00"]  # fmt: skip


def test_start_by_name_records_the_desired_state_sends_the_command_and_audits_the_operator(bots_cli, user, library):
    bot = make_bot(owner=user, name="alpha")

    # when
    out = bots_cli("start", "alpha")

    # then: what the API does for a start, with the operator as the actor
    operator = Actor.operator("bots start").name
    assert out.strip() == f"bot {bot.pk} 'alpha': start_command_sent"
    assert desired(bot) == [DesiredState.RUNNING]
    assert sent_commands() == [(Command.START, {"bot_id": bot.pk, "requested_by": operator})]
    assert not OutboxEntry.objects.filter(sent_at__isnull=True).exists()
    row = AuditLog.objects.get(action="bot_start")
    assert (row.user_id, row.username, row.resource, row.status) == (None, operator, f"bot:{bot.pk}", "success")
    assert row.details == {"bot_name": "alpha"}


def test_a_refused_or_unknown_bot_is_an_error_and_nothing_is_sent(bots_cli, user, other_user):
    stopped = make_bot(owner=user, name="same")
    make_bot(owner=other_user, name="same")

    with pytest.raises(CommandError, match="already stopped"):
        bots_cli("stop", str(stopped.pk))
    with pytest.raises(CommandError, match="2 bots are named 'same'; use the bot's id"):
        bots_cli("start", "same")
    with pytest.raises(CommandError, match=f"No bot of '{other_user.username}' has the id or name '{stopped.pk}'"):
        bots_cli("start", str(stopped.pk), "--owner", other_user.username)
    with pytest.raises(CommandError, match="No user is named 'nobody'"):
        bots_cli("start", "same", "--owner", "nobody")
    with pytest.raises(CommandError, match="one of the arguments BOT --all is required"):
        bots_cli("start")

    assert sent_commands() == []
    assert not AuditLog.objects.filter(action__in=["bot_start", "bot_stop"]).exists()


def test_a_name_is_looked_up_among_one_owners_bots_with_owner(bots_cli, user, other_user, library):
    make_bot(owner=user, name="same")
    theirs = make_bot(owner=other_user, name="same")

    bots_cli("restart", "same", "--owner", other_user.username)

    assert [kind for kind, _ in sent_commands()] == [Command.RESTART]
    assert sent_commands()[0][1]["bot_id"] == theirs.pk


def test_stop_all_of_an_owner_answers_for_each_bot_and_refuses_none_silently(bots_cli, user, other_user):
    running, stopped = make_bot(owner=user), make_bot(owner=user)
    other = make_bot(owner=other_user)
    Bot.objects.filter(pk__in=[running.pk, other.pk]).update(status=BotStatus.RUNNING,
                                                             desired_state=DesiredState.RUNNING)  # fmt: skip

    results = json.loads(bots_cli("stop", "--all", "--owner", user.username, "--json"))

    assert [(item["bot_id"], item["status"]) for item in results] == [(running.pk, "stop_command_sent"),
                                                                      (stopped.pk, "refused")]  # fmt: skip
    assert "already stopped" in results[1]["detail"]
    assert sent_commands() == [(Command.STOP, {"bot_id": running.pk, "requested_by": Actor.operator("bots stop").name})]
    assert desired(running, other) == [DesiredState.STOPPED, DesiredState.RUNNING]


def test_emergency_stop_asks_first_and_sends_nothing_unless_told_yes(bots_cli, user):
    bot = make_bot(owner=user, name="alpha")
    Bot.objects.filter(pk=bot.pk).update(status=BotStatus.RUNNING, desired_state=DesiredState.RUNNING)

    for answer in ("no\n", ""):  # a "no", and an empty stdin (a script that forgot --yes)
        with pytest.raises(CommandError, match="Not confirmed: nothing was sent"):
            bots_cli("emergency-stop", stdin=answer)
    assert sent_commands() == []
    assert desired(bot) == [DesiredState.RUNNING]
    assert not AuditLog.objects.filter(action="emergency_stop_all").exists()

    # when: confirmed
    asked = io.StringIO()
    out = bots_cli("emergency-stop", "--force-exit", stdin="yes\n", stderr=asked)

    # then: asked on stderr, answered on stdout
    assert asked.getvalue().startswith("Emergency stop of 1 bot(s) of every owner, every open trade force-exited: "
                                       "alpha. Type 'yes' to go on: ")  # fmt: skip
    assert f"bot {bot.pk} 'alpha' (was running): emergency_stop_command_sent" in out
    assert sent_commands() == [(Command.EMERGENCY_STOP, {"bot_ids": [bot.pk], "force_exit": True})]
    assert desired(bot) == [DesiredState.STOPPED]


def test_emergency_stop_of_one_owner_with_yes_is_audited_as_the_operator(bots_cli, user, other_user):
    mine, theirs = make_bot(owner=user), make_bot(owner=other_user)
    Bot.objects.update(status=BotStatus.RUNNING, desired_state=DesiredState.RUNNING)

    outcome = json.loads(bots_cli("emergency-stop", "--owner", other_user.username, "--yes", "--json"))

    assert outcome["bot_ids"] == [theirs.pk] and outcome["force_exit"] is False
    assert sent_commands() == [(Command.EMERGENCY_STOP, {"bot_ids": [theirs.pk], "force_exit": False})]
    assert desired(mine, theirs) == [DesiredState.RUNNING, DesiredState.STOPPED]
    row = AuditLog.objects.get(action="emergency_stop_all")
    assert (row.user_id, row.username, row.resource) == (None, Actor.operator("bots emergency-stop").name, "bots")
    assert row.details == {"bot_ids": [theirs.pk], "force_exit": False}
