"""Database triggers that refuse UPDATE and DELETE of audit rows, whatever code or SQL tries.

Installed by migration. ``uninstall`` exists for one reason: a test database is emptied between
end-to-end tests by deleting every row, and the triggers would (rightly) refuse that.
"""

from __future__ import annotations

from typing import Any

_SQLITE_INSTALL = [
    """CREATE TRIGGER IF NOT EXISTS audit_auditlog_no_update BEFORE UPDATE ON audit_auditlog
       BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_auditlog_no_delete BEFORE DELETE ON audit_auditlog
       BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;""",
]
_SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS audit_auditlog_no_update;",
    "DROP TRIGGER IF EXISTS audit_auditlog_no_delete;",
]
_POSTGRES_INSTALL = [
    """CREATE OR REPLACE FUNCTION audit_auditlog_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit rows are append-only'; END; $$ LANGUAGE plpgsql;""",
    "DROP TRIGGER IF EXISTS audit_auditlog_append_only ON audit_auditlog;",
    """CREATE TRIGGER audit_auditlog_append_only BEFORE UPDATE OR DELETE ON audit_auditlog
       FOR EACH ROW EXECUTE FUNCTION audit_auditlog_append_only();""",
    # TRUNCATE skips row triggers; refuse it too.
    "DROP TRIGGER IF EXISTS audit_auditlog_no_truncate ON audit_auditlog;",
    """CREATE TRIGGER audit_auditlog_no_truncate BEFORE TRUNCATE ON audit_auditlog
       FOR EACH STATEMENT EXECUTE FUNCTION audit_auditlog_append_only();""",
]
_POSTGRES_UNINSTALL = [
    "DROP TRIGGER IF EXISTS audit_auditlog_no_truncate ON audit_auditlog;",
    "DROP TRIGGER IF EXISTS audit_auditlog_append_only ON audit_auditlog;",
]
_INSTALL = {"sqlite": _SQLITE_INSTALL, "postgresql": _POSTGRES_INSTALL}
_UNINSTALL = {"sqlite": _SQLITE_UNINSTALL, "postgresql": _POSTGRES_UNINSTALL}


def _run(connection: Any, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def install(connection: Any) -> None:
    _run(connection, _INSTALL.get(connection.vendor, []))


def uninstall(connection: Any) -> None:
    _run(connection, _UNINSTALL.get(connection.vendor, []))
