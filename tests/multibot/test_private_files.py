"""Files under MULTIBOT_HOME that hold data are this user's only: files 0600, directories 0700."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import redis

from multibot.embedded_redis import EmbeddedRedis
from tests.support.processes import ROOT, server_env

# A real run on a fresh home: migrate, write, and report every mode while the connection (and so
# the WAL and its index) is still open.
_RUN = """
import json, django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
get_user_model().objects.create_user(username="mode-check", password="x" * 12)
home = settings.HOME
files = [home, *sorted(home.rglob("*"))]
print(json.dumps({str(path.relative_to(home)): path.stat().st_mode & 0o777 for path in files}))
"""


def _run(home: Path) -> dict[str, int]:
    env = server_env(MULTIBOT_HOME=str(home), DJANGO_SETTINGS_MODULE="multibot.settings")
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", _RUN], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loose(modes: dict[str, int]) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes.items() if mode & 0o077}


def test_a_fresh_home_keeps_its_database_and_its_wal_private(tmp_path):
    # when
    modes = _run(tmp_path / "home")

    # then
    assert {"multibot.sqlite3", "multibot.sqlite3-wal", "multibot.sqlite3-shm"} <= set(modes)
    assert modes["multibot.sqlite3"] == modes["multibot.sqlite3-wal"] == modes["multibot.sqlite3-shm"] == 0o600
    assert modes["."] == 0o700
    assert _loose(modes) == {}


def test_a_home_left_readable_by_an_older_version_is_made_private(tmp_path):
    # given: what the previous version left: a 0755 home and a 0644 database
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    sqlite3.connect(home / "multibot.sqlite3").close()
    (home / "multibot.sqlite3").chmod(0o644)

    # when
    modes = _run(home)

    # then
    assert (modes["."], modes["multibot.sqlite3"], modes["multibot.sqlite3-wal"]) == (0o700, 0o600, 0o600)


def test_the_embedded_redis_keeps_its_aof_private(tmp_path):
    # given: a file an older version left readable
    directory = tmp_path / "redis"
    directory.mkdir()
    (directory / "old-dump.rdb").write_text("x")
    (directory / "old-dump.rdb").chmod(0o644)
    server = EmbeddedRedis(directory)
    previous = os.umask(0o022)  # the server must not depend on who started it
    try:
        server.start()
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
    finally:
        os.umask(previous)
        server.stop()

    # then
    aof = directory / "appendonlydir"
    assert any(aof.iterdir()), "AOF files written"
    paths = [directory, *directory.rglob("*")]
    modes = {str(path.relative_to(directory)): path.stat().st_mode & 0o777 for path in paths}
    assert modes["appendonlydir"] == 0o700
    assert _loose(modes) == {}, modes
