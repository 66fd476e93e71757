"""Database triggers that refuse UPDATE and DELETE on audit rows (SQL in audit/triggers.py)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from audit import triggers

    triggers.install(schema_editor.connection)


def backwards(apps, schema_editor):
    from audit import triggers

    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
