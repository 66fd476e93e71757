"""The runner with tiny real children: the process group ends whole, by cancel, by time limit or by itself."""

from __future__ import annotations

import sys
import time

import psutil

from jobs.backtest_entry import progress_line
from jobs.runner import JobProcess
from tests.support.processes import server_env

# Ignores SIGTERM, starts a grandchild that ignores it too, prints the grandchild's pid and sleeps.
STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "deaf = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'\n"
    "child = subprocess.Popen([sys.executable, '-c', deaf])\n"
    "time.sleep(0.3)\n"
    "print('grandchild', child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def process(program: str, tmp_path, **kwargs) -> JobProcess:
    options = {"time_limit": 30.0, "grace": 0.5, "beat_seconds": 0.1, **kwargs}
    return JobProcess([sys.executable, "-c", program], cwd=tmp_path, env=server_env(), log_path=tmp_path / "job.log",
                      **options)  # fmt: skip


def grandchild_pid(tmp_path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in (tmp_path / "job.log").read_text().splitlines() if (tmp_path / "job.log").exists() else []:
            if line.startswith("grandchild "):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError("no grandchild reported")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_cancel_ends_the_whole_group_even_what_ignores_sigterm(tmp_path):
    beats = []

    def on_beat(tail):
        beats.append(list(tail))
        return any(line.startswith("grandchild") for line in tail)  # cancel once the grandchild exists

    runner = process(STUBBORN, tmp_path, on_beat=on_beat)

    outcome = runner.run()

    assert outcome.ended_by == "cancelled" and not outcome.succeeded
    assert gone(grandchild_pid(tmp_path)) and gone(runner.process.pid)
    assert outcome.seconds < 10


def test_the_time_limit_ends_the_run(tmp_path):
    runner = process("import time; time.sleep(60)", tmp_path, time_limit=0.5)

    outcome = runner.run()

    assert outcome.ended_by == "time_limit"
    assert outcome.seconds < 5 and gone(runner.process.pid)


def test_a_finished_run_reports_its_exit_code_its_log_tail_and_its_progress(tmp_path):
    program = (f"print({progress_line(0.25, 'dataload')!r}); print('hello'); print({progress_line(1.0, 'backtest')!r});"
               " raise SystemExit(3)")  # fmt: skip
    reported = []

    outcome = process(program, tmp_path, on_progress=lambda progress, step: reported.append((progress, step))).run()

    assert (outcome.returncode, outcome.ended_by, outcome.succeeded) == (3, "", False)
    assert outcome.log_tail == ["hello"]
    assert reported == [(0.25, "dataload"), (1.0, "backtest")]
    assert "hello" in (tmp_path / "job.log").read_text()
