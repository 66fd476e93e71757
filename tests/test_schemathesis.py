"""schemathesis against a live server: every operation of /api/schema/, every check, as a user and as a superuser.

The server is a real uvicorn on a private MULTIBOT_HOME with its own embedded Redis, on the test
database; its rate limits are raised so that thousands of requests in a minute are not refused.
What schemathesis is told to tolerate, and why, is written in tests/schemathesis.toml.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from multibot.embedded_redis import EmbeddedRedis
from tests import factories
from tests.support.processes import ROOT, VENV_BIN, database_url, server_env, uvicorn_server

SCHEMATHESIS = str(Path(VENV_BIN) / "st")
CONFIG = str(ROOT / "tests" / "schemathesis.toml")
# The deadline of one schemathesis run; a run takes well under a minute here.
RUN_SECONDS = 300
_HIGH = "1000000"
RATE_LIMITS = f"user={_HIGH}/hour,anon={_HIGH}/hour,health={_HIGH}/minute,upload={_HIGH}/hour,login={_HIGH}/minute"
CANDLES_CSV = "date,open,high,low,close,volume\n" + "".join(
    f"2024-01-01 00:{minute:02d}:00,100,101,99,100.5,10\n" for minute in range(0, 60, 5)
)


def _login(base: str, username: str) -> str:
    answer = httpx.post(f"{base}/api/v1/auth/login/json", json={"username": username, "password": factories.PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _schemathesis(base: str, token: str, events: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MULTIBOT_TEST_TOKEN": token,
        "HYPOTHESIS_STORAGE_DIRECTORY": str(events.parent / "hypothesis"),
    }
    return subprocess.run(
        [SCHEMATHESIS, "--config-file", CONFIG, "run", f"{base}/api/schema/", "--checks", "all", "--no-color",
         "--report", "ndjson", "--report-ndjson-path", str(events)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_SECONDS,
    )  # fmt: skip


def check_outcomes(events: Path) -> Counter[tuple[str, str]]:
    """(check, status) -> how many responses it judged so, from schemathesis's event stream."""
    outcomes: Counter[tuple[str, str]] = Counter()
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        for checks in (finished or {}).get("recorder", {}).get("checks", {}).values():
            outcomes.update((check["name"], check["status"]) for check in checks)
    return outcomes


_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# What `--checks all` means in this version (`st run --help`); each must have judged some response.
CHECKS = (
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance", "negative_data_rejection", "positive_data_acceptance", "missing_required_header",
    "unsupported_method", "allow_header_conformance", "use_after_free", "ensure_resource_availability",
    "ignored_auth", "object_level_authorization",
)  # fmt: skip


def _statuses(outcomes: Counter[tuple[str, str]], check: str) -> str:
    return ", ".join(f"{count} {status}" for (name, status), count in sorted(outcomes.items()) if name == check)


def _failures(output: str) -> str:
    """What failed and how to reproduce it (schemathesis's ERRORS and FAILURES sections)."""
    start = min((output.find(mark) for mark in ("= ERRORS =", "= FAILURES =") if mark in output), default=0)
    return output[start : output.find("= WARNINGS =") if "= WARNINGS =" in output else None][-15000:]


def _summary(output: str) -> str:
    return output[output.find("= SUMMARY =") :] or output[-3000:]


@pytest.mark.slow
def test_the_live_api_answers_every_operation_as_its_schema_says(committed_db, tmp_path):
    # given: a live server with a user who owns a bot and has uploaded candles, and a superuser
    home = tmp_path / "home"
    redis_server = EmbeddedRedis(home / "redis")
    redis_server.start()
    user, admin = factories.make_user(), factories.make_user(is_superuser=True)
    factories.make_bot(owner=user, name="alpha")
    env = server_env(
        DJANGO_SETTINGS_MODULE="tests.settings", MULTIBOT_HOME=str(home), DATABASE_URL=database_url(),
        MULTIBOT_RATE_LIMITS=RATE_LIMITS, MULTIBOT_LOGIN_MAX_FAILURES=_HIGH,
        SECRET_KEY=settings.SECRET_KEY,  # the bot made here must decrypt there
    )  # fmt: skip
    server_log = open(tmp_path / "server.log", "w")
    runs = {}
    try:
        with uvicorn_server(env, output=server_log) as base:
            tokens = {"user": _login(base, user.username), "superuser": _login(base, admin.username)}
            # The server's first upload imports pandas: past httpx's 5 s default on a busy machine.
            upload = httpx.post(
                f"{base}/api/v1/data/upload", headers={"Authorization": f"Bearer {tokens['user']}"},
                data={"pair": "BTC/USDT", "timeframe": "5m"}, files={"file": ("btc.csv", CANDLES_CSV)}, timeout=60,
            )  # fmt: skip
            assert upload.status_code == 201, upload.text
            schema = httpx.get(f"{base}/api/schema/", params={"format": "json"}).json()
            # when: the user first (the superuser's run may deactivate the user), then the superuser
            for who in ("user", "superuser"):
                runs[who] = _schemathesis(base, tokens[who], tmp_path / f"{who}.ndjson")
    finally:
        redis_server.stop()
        server_log.close()
    # The server's own account of its errors (a 503 of a bot that is not running is documented).
    errors = [line for line in (tmp_path / "server.log").read_text().splitlines()
              if "Service Unavailable" not in line and " WARNING " not in line]  # fmt: skip

    # then: every operation of the schema tested, and no check failed
    operations = sum(1 for item in schema["paths"].values() for method in item if method in _METHODS)
    outcomes = {who: check_outcomes(tmp_path / f"{who}.ndjson") for who in runs}
    judged = {who: "\n".join(f"  {name}: {_statuses(outcomes[who], name)}" for name in CHECKS) for who in runs}
    for who, run in runs.items():  # both summaries first: shown by pytest -rP, and on failure
        print(f"schemathesis as the {who}:\n{_summary(run.stdout)}\nchecks:\n{judged[who]}")
    failed = [f"schemathesis as the {who} failed:\n{_failures(run.stdout)}\n{run.stderr[-3000:]}"
              for who, run in runs.items() if run.returncode != 0]  # fmt: skip
    assert not failed, "\n".join([*failed, "server log:", *errors[-60:]])
    for who, run in runs.items():
        summary = _summary(run.stdout)
        assert f"Selected: {operations}/{operations}" in summary and f"Tested: {operations}" in summary, summary
        assert "failure" not in summary.splitlines()[-1], summary
        assert all(outcomes[who][(name, "success")] for name in CHECKS), judged[who]
        assert not [key for key in outcomes[who] if key[1] == "failure"], judged[who]
