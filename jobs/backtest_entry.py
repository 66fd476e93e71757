"""``python -m jobs.backtest_entry backtesting ...``: freqtrade's own CLI, reporting its progress on stdout.

freqtrade's ``main`` runs exactly as ``freqtrade backtesting`` would (same arguments, same result
files, same exit codes); only its Backtesting is given a progress callback, the one freqtrade's
webserver uses, and each change of its progress tracker is printed as one ``PROGRESS_PREFIX`` line
with JSON (``progress`` 0-1, ``step``) that the runner reads. No Django here: this is the subprocess.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

PROGRESS_PREFIX = "@@multibot-progress "
# freqtrade's backtest has four phases (data load, analyze, convert, backtest) on its overall bar.
_PHASES = 4
_MIN_INTERVAL = 0.25


def progress_line(progress: float, step: str) -> str:
    return PROGRESS_PREFIX + json.dumps({"progress": round(min(max(progress, 0.0), 1.0), 4), "step": step})


def parse_progress_line(line: str) -> tuple[float, str] | None:
    """(progress, step) of a progress line, None for any other line of freqtrade's output."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        data = json.loads(line[len(PROGRESS_PREFIX) :])
        return float(data["progress"]), str(data["step"])
    except (ValueError, KeyError, TypeError):
        return None


def _install_progress_reporter() -> None:
    from freqtrade.optimize import backtesting

    class ReportingBacktesting(backtesting.Backtesting):
        def __init__(self, config: Any, exchange: Any = None, **kwargs: Any) -> None:
            self._last_report = (0.0, "")
            kwargs.setdefault("progress_callback", self._report)
            super().__init__(config, exchange, **kwargs)

        def _report(self, task: Any) -> None:
            tracker = self.progress
            if tracker is None or len(tracker.tasks) < 2:
                return
            overall, detail = tracker.tasks[0], tracker.tasks[1]
            within = (detail.completed / detail.total) if detail.total else 0.0
            progress = (max(overall.completed - 1, 0) + within) / _PHASES
            step = str(detail.description or overall.description)
            last_at, last_step = self._last_report
            now = time.monotonic()
            if step == last_step and now - last_at < _MIN_INTERVAL:
                return
            self._last_report = (now, step)
            print(progress_line(progress, step), flush=True)

    # start_backtesting imports Backtesting from this module when it runs: it gets ours.
    backtesting.Backtesting = ReportingBacktesting  # type: ignore[misc]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


def _write_results(argv: list[str], target: str) -> None:
    """freqtrade's result file read here, where freqtrade is loaded already, into ``target`` as JSON."""
    import os
    from pathlib import Path

    from jobs.backtest import read_results

    found = Path(_option(argv, "--backtest-directory") or "")
    results = read_results(found, _option(argv, "--strategy") or "")
    staging = Path(target + ".tmp")
    staging.write_text(json.dumps(results))
    os.replace(staging, target)  # the worker never reads half a file


def main(argv: list[str]) -> None:
    """``[--results-json PATH] backtesting ...``: with a path, freqtrade's results are also written there."""
    target = None
    if argv[:1] == ["--results-json"]:
        target, argv = argv[1], argv[2:]
    _install_progress_reporter()
    from freqtrade.main import main as freqtrade_main

    try:
        freqtrade_main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if target and code == 0:
            _write_results(argv, target)
        _exit_now(code)


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown: everything is written, and tearing down freqtrade's
    module graph (and its exchange's async session) costs a second or more of a job's time."""
    import logging
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
