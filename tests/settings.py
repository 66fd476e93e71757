"""Test settings: the real settings, on a private MULTIBOT_HOME with its own embedded Redis."""

from __future__ import annotations

import os
import tempfile

# Tests own their Redis (started by tests/conftest.py) and never touch a shared one.
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("MULTIBOT_HOME", tempfile.mkdtemp(prefix="multibot-test-"))

from multibot.settings import *  # noqa: F403
from multibot.settings import DATABASES, HOME

# Fast hashing: the suite creates many users; production keeps Django's default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# SQLite tests use a file, so that server subprocesses started by tests see the same data.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(HOME / "test.sqlite3")}

# No background components run during unit tests; tests that need one set it themselves.
MONITORING = {**MONITORING, "components": []}  # noqa: F405
