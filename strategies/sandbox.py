"""Runs the dry load (strategies/dryload.py) of an uploaded strategy in a child process and reads its answer.

The child gets a fresh scratch directory holding only the strategy (and its parameter file), an empty
environment, its own process group, and a wall-clock limit after which the whole group is killed.
Its output goes to a file in another private directory, bounded by the child's own file-size limit.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DRYLOAD = Path(__file__).resolve().with_name("dryload.py")


class DryLoadError(Exception):
    """The strategy did not load; the message says why, for the user."""


@dataclass(frozen=True)
class Inspection:
    """What the dry load found: the class's timeframe and hyperoptable parameters."""

    class_name: str
    timeframe: str | None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # The kernel's walls that were up (landlock: files; seccomp: system calls).
    walls: dict[str, bool] = field(default_factory=dict)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for kill in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    process.wait()


def dry_load(
    *, class_name: str, code: bytes, parameters: bytes | None, timeout: float, private: tuple[Path, ...] = ()
) -> Inspection:
    """Load ``code`` with freqtrade's resolver, walled in; raises DryLoadError with the reason.

    ``private``: directories the child may never read, even where one lies under the Python path.
    """
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="strategy-dryload-"))
    output_dir = Path(tempfile.mkdtemp(prefix="strategy-dryload-out-"))
    try:
        (scratch / f"{class_name}.py").write_bytes(code)
        if parameters is not None:
            (scratch / f"{class_name}.json").write_bytes(parameters)
        nonce = secrets.token_hex(16)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMEXPR_MAX_THREADS": "1"}  # fmt: skip
        with open(output_dir / "out", "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-I", str(DRYLOAD), str(scratch), class_name, *map(str, private)],
                cwd=scratch, env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
            try:
                process.communicate(f"{nonce}\n".encode(), timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise DryLoadError(f"loading the strategy took longer than {timeout:g} s") from None
            finally:
                _kill_group(process)
        answer = _answer((output_dir / "out").read_bytes(), nonce)
        if answer is None:
            if process.returncode and process.returncode < 0:
                name = signal.Signals(-process.returncode).name if -process.returncode in signal.valid_signals() else ""
                reason = f"the process loading the strategy ended on signal {-process.returncode} {name}".strip()
            else:
                reason = f"the module exits the interpreter while loading (exit code {process.returncode})"
            raise DryLoadError(reason)
        if not answer.get("ok"):
            raise DryLoadError(str(answer.get("error") or "the strategy did not load"))
        return Inspection(class_name=answer["class"], timeframe=answer.get("timeframe"),
                          parameters=list(answer.get("parameters") or []), walls=dict(answer.get("walls") or {}),
                          seconds=time.monotonic() - started)  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(output_dir, ignore_errors=True)


def _answer(output: bytes, nonce: str) -> dict[str, Any] | None:
    marker = nonce.encode()
    for line in reversed(output.splitlines()):
        if line.startswith(marker):
            try:
                value = json.loads(line[len(marker) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None
