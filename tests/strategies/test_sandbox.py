"""The dry load's readable roots: the Python installation and the scratch dir, never the home."""

from __future__ import annotations

import sys
from pathlib import Path

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
