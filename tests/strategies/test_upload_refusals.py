"""Every refusal of an upload: a 422 that names the problem, within the dry load's limit, and nothing stored."""

from __future__ import annotations

import hashlib
import json
import time

import psutil
import pytest
from django.conf import settings

from strategies.library import version_path
from strategies.models import Strategy, StrategyVersion
from tests.strategies.conftest import DRY_LOAD_SECONDS, strategy_text, upload

pytestmark = pytest.mark.django_db


def refused(response, field: str = "file") -> str:
    assert response.status_code == 422, response.content
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field]
    return error["msg"]


def nothing_stored(content: str | bytes | None = None) -> bool:
    """No row; and, given what was sent, no file of it."""
    rows = Strategy.objects.exists() or StrategyVersion.objects.exists()
    if content is None:
        return not rows
    data = content.encode() if isinstance(content, str) else content
    return not rows and not version_path(hashlib.sha256(data).hexdigest()).exists()


@pytest.mark.parametrize(
    ("filename", "words"),
    [
        ("my-strategy.py", "not a plain Python identifier"),
        ("MyStrategy.txt", "not a Python file"),
        ("json.py", "would shadow the Python module 'json'"),
        ("talib.py", "would shadow the Python module 'talib'"),
        ("freqtrade.py", "would shadow the Python module 'freqtrade'"),
        ("MyStrategy:ZnJvbQ==.py", "inline 'Name:base64' form"),
    ],
)
def test_a_file_name_that_is_not_a_plain_identifier_or_shadows_a_module_is_refused(user_api, filename, words):
    assert words in refused(upload(user_api, strategy_text(), filename=filename))
    assert nothing_stored()


@pytest.mark.parametrize("class_name", ["socket", "pandas", "numpy"])
def test_a_class_name_that_shadows_a_module_is_refused(user_api, class_name):
    message = refused(upload(user_api, strategy_text(class_name), filename="Mine.py"), "strategy_name")

    assert f"would shadow the Python module {class_name!r}" in message
    assert nothing_stored()


def test_freqtraders_inline_base64_strategy_name_is_refused(user_api):
    response = upload(user_api, strategy_text(), strategy_name="MyStrategy:ZnJvbSBvcyBpbXBvcnQgc3lzdGVt")

    assert "inline 'Name:base64' form" in refused(response, "strategy_name")
    assert nothing_stored()


def test_a_file_over_the_size_cap_is_refused(user_api, settings):
    text = strategy_text()
    settings.STRATEGIES = {**settings.STRATEGIES, "max_upload_bytes": len(text.encode()) - 1}

    assert f"larger than {len(text.encode()) - 1} bytes" in refused(upload(user_api, text))
    assert nothing_stored()


def test_a_file_that_is_not_strict_utf8_is_refused(user_api):
    data = strategy_text().replace("# ", "").encode() + "# caf\u00e9\n".encode("latin-1")

    assert "not UTF-8" in refused(upload(user_api, data))
    assert nothing_stored()


def test_a_syntax_error_is_refused_with_its_line(user_api):
    text = strategy_text() + "\ndef broken(:\n    pass\n"

    message = refused(upload(user_api, text))

    assert message.startswith("Syntax error at line ")
    assert nothing_stored()


def test_a_file_without_an_istrategy_class_is_refused(user_api):
    text = "class MyStrategy(object):\n    def populate_indicators(self, d, m):\n        return d\n"

    assert "no class deriving from IStrategy" in refused(upload(user_api, text))
    assert nothing_stored()


def test_a_named_class_that_is_not_in_the_file_is_refused(user_api):
    assert "no class 'Other'" in refused(upload(user_api, strategy_text(), strategy_name="Other"))


def test_a_strategy_class_without_the_exit_trend_method_is_refused(user_api):
    text = strategy_text().replace("populate_exit_trend", "populate_something_else")

    assert "lacks populate_exit_trend" in refused(upload(user_api, text))
    assert nothing_stored()


def test_a_parameter_file_that_is_not_json_or_is_for_another_class_is_refused(user_api):
    not_json = refused(upload(user_api, strategy_text(), parameters="{not json"), "parameters")
    other = json.dumps({"strategy_name": "Other", "params": {"buy": {"buy_rsi": 20}}})
    for_another = refused(upload(user_api, strategy_text(), parameters=other), "parameters")

    assert "not JSON" in not_json
    assert "for 'Other', not 'MyStrategy'" in for_another
    assert nothing_stored()


# Refused by the dry load: freqtrade's resolver, in a walled-in child process


def dry_loads_alive() -> list[psutil.Process]:
    alive = []
    for process in psutil.process_iter(["cmdline"]):
        if any(part.endswith("dryload.py") for part in process.info["cmdline"] or []):
            alive.append(process)
    return alive


def timed_refusal(client, text: str) -> tuple[str, float]:
    started = time.monotonic()
    message = refused(upload(client, text))
    return message, time.monotonic() - started


@pytest.mark.parametrize(
    ("prelude", "words"),
    [
        ("import no_such_module_here", "No module named 'no_such_module_here'"),
        ("open('../../secret_key').read()", "may not read '../../secret_key'"),
        (f"open({str(settings.HOME / 'secret_key')!r}).read()", "may not read"),
        ("import os\nos.listdir('/')", "may not read '/'"),
        ("import sys\nsys.exit(3)", "exits the interpreter (SystemExit 3)"),
        ("import os\nos._exit(0)", "exits the interpreter while loading"),
        ("import subprocess\nsubprocess.run(['true'])", "may not use subprocess.Popen"),
        ("import os\nos.system('true')", "may not use os.system"),
        ("import os\nos.fork()", "may not use os.fork"),
        ("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)", "may not use os.kill"),
        ("import socket\nsocket.socket().connect(('127.0.0.1', 6379))", "may not use socket."),
        ("open('/tmp/escape.txt', 'w').write('x')", "may not write '/tmp/escape.txt'"),
        ("import os\nprint('forged ok')\nos._exit(0)", "exits the interpreter while loading"),
        ("import os\nos.abort()", "the process loading the strategy ended on signal"),
    ],
    ids=["import-error", "reads-parent", "reads-home", "lists-root", "sys-exit", "os-exit", "subprocess", "system",
         "fork", "kill", "socket", "writes-outside", "forged-answer", "abort"],
)  # fmt: skip
def test_module_code_that_fails_or_escapes_its_directory_is_refused_by_the_dry_load(user_api, prelude, words):
    text = strategy_text(prelude=prelude)
    message, elapsed = timed_refusal(user_api, text)

    assert message.startswith("freqtrade could not load the strategy: ")
    assert words in message
    assert elapsed < DRY_LOAD_SECONDS
    assert nothing_stored(text)


def test_module_code_that_loops_forever_is_refused_at_the_time_limit(user_api):
    text = strategy_text(prelude="while True:\n    pass")
    message, elapsed = timed_refusal(user_api, text)

    assert f"took longer than {DRY_LOAD_SECONDS} s" in message
    assert DRY_LOAD_SECONDS <= elapsed < DRY_LOAD_SECONDS + 3
    assert not dry_loads_alive()  # its process group was killed, nothing left running
    assert nothing_stored(text)


def test_a_class_that_fails_freqtraders_own_checks_is_refused(user_api):
    # freqtrade refuses order types that do not say how to enter, exit and stop.
    text = strategy_text(body='    order_types = {"entry": "limit"}\n')

    message, _ = timed_refusal(user_api, text)

    assert message.startswith("freqtrade could not load the strategy: ")
    assert "order" in message.lower()
    assert nothing_stored(text)


def test_a_timeframe_freqtrade_cannot_read_is_refused(user_api):
    text = strategy_text(timeframe="7 parsecs")
    message, _ = timed_refusal(user_api, text)

    assert "timeframe '7 parsecs' is not a timeframe" in message
    assert nothing_stored(text)


# Below the audit hook: the kernel's walls, for routes Python does not report


def test_a_process_started_below_the_audit_hook_is_refused_by_the_kernel(user_api):
    # _posixsubprocess.fork_exec raises no audit event, and root ignores RLIMIT_NPROC: the filter refuses it.
    prelude = (
        "import _posixsubprocess, os\n"
        "r, w = os.pipe()\n"
        "_posixsubprocess.fork_exec([b'/bin/true'], [b'/bin/true'], True, (w,), None, None, -1, -1, -1, -1, -1, -1,"
        " r, w, False, False, -1, None, None, None, -1, None, False)"
    )
    text = strategy_text(prelude=prelude)

    message, _ = timed_refusal(user_api, text)

    assert "Operation not permitted" in message
    assert nothing_stored(text)


def test_a_file_read_below_the_audit_hook_is_refused_by_the_kernel(user_api):
    # A native library is opened by the dynamic loader, which no audit event reports: Landlock refuses it.
    if not dry_load_walls().get("landlock"):
        pytest.skip("this kernel has no Landlock")
    prelude = (
        "import importlib.machinery, importlib.util\n"
        "loader = importlib.machinery.ExtensionFileLoader('outside', '/usr/lib/x86_64-linux-gnu/libc.so.6')\n"
        "loader.create_module(importlib.util.spec_from_loader('outside', loader))"
    )
    text = strategy_text(prelude=prelude)

    message, _ = timed_refusal(user_api, text)

    assert "libc.so.6: cannot open shared object file: Permission denied" in message
    assert nothing_stored(text)


def dry_load_walls() -> dict[str, bool]:
    from strategies.sandbox import dry_load

    return dry_load(class_name="MyStrategy", code=strategy_text().encode(), parameters=None, timeout=30).walls


def test_the_dry_load_runs_behind_the_system_call_filter():
    assert dry_load_walls()["seccomp"] is True


def test_a_class_named_like_an_api_path_is_refused(user_api):
    message = refused(upload(user_api, strategy_text("backtest"), filename="Mine.py"), "strategy_name")

    assert "a word the strategies API uses in its paths" in message


def test_a_body_declared_larger_than_the_caps_is_refused_before_it_is_read(user_api, settings):
    settings.STRATEGIES = {**settings.STRATEGIES, "max_upload_bytes": 1000, "max_parameters_bytes": 1000}
    text = strategy_text() + "#" * 200_000 + "\n"

    assert "larger than 1000 bytes" in refused(upload(user_api, text))
    assert nothing_stored(text)
