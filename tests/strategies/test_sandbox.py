"""The dry load's readable roots: the Python installation and the scratch dir, never the home."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from strategies import dryload


def test_a_path_entry_that_holds_the_home_is_not_readable(tmp_path, monkeypatch):
    # given: a project installed in development mode puts its directory, which holds the home, on the path
    project, scratch = tmp_path / "project", tmp_path / "scratch"
    (project / "var").mkdir(parents=True)
    scratch.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(project)])

    # when
    roots = dryload._readable_roots(scratch, (str((project / "var").resolve()),))

    # then
    assert str(project.resolve()) not in roots
    assert str(scratch.resolve()) in roots
    assert str(Path(sys.base_prefix).resolve()) in roots


def test_the_system_call_filter_refuses_what_a_strategy_never_needs():
    program = dryload._seccomp_program()

    constants = {k for _, _, _, k in program}
    assert {dryload.DENIED_SYSCALLS[name] for name in ("fork", "vfork", "execve", "socket", "kill")} <= constants
    # every jump lands inside the program, and the program ends in a return
    jumps = [(index, jt, jf) for index, (code, jt, jf, _) in enumerate(program) if code & 0x07 == 0x05]
    assert jumps and all(index + 1 + max(jt, jf) < len(program) for index, jt, jf in jumps)
    assert program[-1][0] == 0x06


def test_behind_the_filter_no_route_signals_another_process():
    """kill, and the pidfd route that raises no audit event (pidfd_open, pidfd_send_signal): refused by the
    kernel, so a strategy cannot stop the web server, the gateway or anyone's bots."""
    import subprocess
    import textwrap

    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    probe = textwrap.dedent(f"""
        import os, signal, sys
        from strategies import dryload
        if not dryload.install_seccomp():
            print("no-seccomp"); sys.exit(0)
        outcomes = []
        for attempt in (lambda: os.kill({target.pid}, signal.SIGKILL),
                        lambda: signal.pidfd_send_signal(os.pidfd_open({target.pid}), signal.SIGKILL)):
            try:
                attempt()
                outcomes.append("sent")
            except PermissionError:
                outcomes.append("refused")
        print(",".join(outcomes))
    """)
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                              cwd=Path(dryload.__file__).resolve().parents[1])  # fmt: skip
        if done.stdout.strip() == "no-seccomp":
            pytest.skip("this kernel or machine has no seccomp filter")
        assert done.stdout.strip() == "refused,refused", done.stdout + done.stderr
        assert target.poll() is None  # still alive
    finally:
        target.kill()
        target.wait()
