"""The runner: owns one job's freqtrade subprocess from start to end. No Django here.

The subprocess runs in its own process group (its own session), so that a cancel, a time limit or
the end of the run signals the whole group: SIGTERM, a grace, then SIGKILL, and nothing is left
behind. On Linux it is also told to die with its parent (PR_SET_PDEATHSIG), so a worker that is
SIGKILLed leaves no freqtrade running on its own. Its output (stdout and stderr together) goes to
the job's log file line by line; progress lines (jobs.backtest_entry) become ``on_progress`` calls.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobs.backtest_entry import parse_progress_line

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 200
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class RunOutcome:
    returncode: int | None
    # Why the run was ended from outside, if it was: "cancelled" or "time_limit".
    ended_by: str = ""
    log_tail: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return not self.ended_by and self.returncode == 0


class JobProcess:
    """One run of ``argv`` in ``cwd``; ``run()`` returns when it has ended and its group is gone."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        time_limit: float,
        grace: float = 3.0,
        beat_seconds: float = 2.0,
        on_progress: Callable[[float, str], None] | None = None,
        on_beat: Callable[[list[str]], bool] | None = None,
    ) -> None:
        """``on_beat(log_tail)`` runs every ``beat_seconds`` and returns True when the job is to be cancelled."""
        self.argv, self.cwd, self.env, self.log_path = list(argv), cwd, env, log_path
        self.time_limit, self.grace, self.beat_seconds = time_limit, grace, beat_seconds
        self.on_progress, self.on_beat = on_progress, on_beat
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read_output, name=f"job-output-{self.process.pid}", daemon=True)
        self._reader.start()
        return self.process

    def run(self) -> RunOutcome:
        started = time.monotonic()
        process = self.start()
        ended_by = ""
        next_beat = started
        try:
            while process.poll() is None:
                now = time.monotonic()
                if now - started > self.time_limit:
                    ended_by = "time_limit"
                    break
                if now >= next_beat:
                    next_beat = now + self.beat_seconds
                    if self.on_beat is not None and self.on_beat(list(self.tail)):
                        ended_by = "cancelled"
                        break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=min(0.2, self.beat_seconds))
        finally:
            # Whatever ended the loop (done, cancel, limit, or an exception such as Celery's soft
            # time limit): the group goes, and no process of it is left behind.
            self.stop()
        return RunOutcome(returncode=process.returncode, ended_by=ended_by, log_tail=list(self.tail),
                          seconds=time.monotonic() - started)  # fmt: skip

    def stop(self) -> None:
        """SIGTERM to the group, ``grace`` seconds, then SIGKILL to whatever of it is left."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while children of its group live on: the group is killed either way.
        self._signal_group(signal.SIGKILL)
        process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)  # the session leader's pid is its group's id

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in self.process.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                progress = parse_progress_line(line)
                if progress is None:
                    self.tail.append(line)
                elif self.on_progress is not None:
                    try:
                        self.on_progress(*progress)
                    except Exception:  # a lost progress report must not stop the run
                        logger.warning("a progress report was lost", exc_info=True)
