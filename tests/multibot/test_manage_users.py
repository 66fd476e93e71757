"""manage.py multibot_user: accounts from the server's shell, through the users services, audited as the operator."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from audit.models import AuditLog
from audit.services import Actor
from tests.factories import make_user
from tests.support.processes import ROOT, database_url, server_env

User = get_user_model()
PASSPHRASE = "a-long-and-unusual-passphrase-42"


def run(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    extra = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command("multibot_user", *args, stdout=out, **extra)
    return out.getvalue()


@pytest.mark.django_db
def test_create_without_a_password_generates_one_and_shows_it_once():
    # when
    out = run("create", "carol", "--email", "carol@example.com")

    # then
    password = out.strip().splitlines()[-1].rsplit(": ", 1)[1]
    carol = User.objects.get(username="carol")
    assert carol.check_password(password) and len(password) >= 20
    assert (carol.email, carol.is_superuser, carol.is_active) == ("carol@example.com", False, True)
    row = AuditLog.objects.get(action="user_create")
    assert (row.user_id, row.username, row.resource) == (None, Actor.operator("multibot_user create").name,
                                                         f"user:{carol.pk}")  # fmt: skip
    assert row.username.startswith("manage.py multibot_user create (")
    assert row.details == {"username": "carol", "is_superuser": False, "via": "manage.py"}
    assert password not in json.dumps(row.details)


@pytest.mark.django_db
def test_create_a_superuser_with_a_password_from_stdin_prints_no_password():
    out = run("create", "root2", "--superuser", "--password-stdin", stdin=PASSPHRASE + "\n")

    root = User.objects.get(username="root2")
    assert root.check_password(PASSPHRASE)
    assert root.is_superuser and root.is_staff
    assert PASSPHRASE not in out and "password" not in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["create", "ALICE"], None, "A user named 'alice' already exists"),  # usernames are unique whatever their case
        (["create", "dave", "--password-stdin"], "short\n", "password"),
        (["create", "dave", "--password-stdin"], "", "no password"),
        (["create", "da ve"], None, "username"),
        (["create", "dave", "--email", "not-an-address"], None, "email"),
    ],
)
def test_a_refused_create_says_why_and_changes_nothing(args, stdin, says):
    make_user(username="alice")

    with pytest.raises(CommandError, match=says):
        run(*args, stdin=stdin)

    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_list_shows_every_user_and_no_password(user, superuser):
    rows = json.loads(run("list", "--json"))
    table = run("list")

    assert [(row["username"], row["is_superuser"]) for row in rows] == [(user.username, False),
                                                                        (superuser.username, True)]  # fmt: skip
    assert all("password" not in row for row in rows)
    assert table.splitlines()[0].split()[:3] == ["ID", "USERNAME", "EMAIL"]
    assert user.username in table and "md5$" not in table


@pytest.mark.django_db
def test_deactivate_ends_the_users_access_and_is_audited_once(user):
    # when
    out = run("deactivate", user.username)

    # then
    user.refresh_from_db()
    assert not user.is_active
    assert "Deactivated" in out
    row = AuditLog.objects.get(action="user_deactivate")
    assert (row.resource, row.username) == (f"user:{user.pk}", Actor.operator("multibot_user deactivate").name)
    with pytest.raises(CommandError, match="already deactivated"):
        run("deactivate", user.username)
    with pytest.raises(CommandError, match="No user is named 'nobody'"):
        run("deactivate", "nobody")
    run("activate", user.username)
    user.refresh_from_db()
    assert user.is_active
    assert AuditLog.objects.filter(action__in=["user_deactivate", "user_activate"]).count() == 2


class Finished:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.stdout, self.stderr = process.communicate(timeout=60)
        self.returncode = process.returncode


def test_the_real_command_line_exits_0_done_1_refused_2_usage(committed_db):
    # given: a user the refused create names
    make_user(username="erin")
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())

    def manage(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "manage.py", "multibot_user", *args], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    # when: the three at once (each process spends its seconds importing)
    running = manage("list", "--json"), manage("create", "erin"), manage("rename", "erin")
    listed, refused, misused = (Finished(process) for process in running)

    # then
    assert listed.returncode == 0, listed.stderr
    assert [row["username"] for row in json.loads(listed.stdout)] == ["erin"]
    assert refused.returncode == 1
    assert "A user named 'erin' already exists" in refused.stderr and refused.stdout == ""
    assert misused.returncode == 2
    assert "invalid choice: 'rename'" in misused.stderr
    assert User.objects.count() == 1
