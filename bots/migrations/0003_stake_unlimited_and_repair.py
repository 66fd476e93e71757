"""A stake may be "unlimited" (null); a stake an older version let in that cannot be read back is repaired.

Older versions accepted stakes such as 9999999999999999, which SQLite keeps as 1e16: a row the
ORM can then never load, which broke every listing of its owner's bots and the fleet's emergency
stop. Each such row gets the largest stake a bot may have, and its bot waits in ``error`` with a
``status_detail`` saying why, until its owner sets the stake they want.
"""

from __future__ import annotations

import decimal
from typing import Any

from django.db import migrations, models

# Written out, not imported: a migration keeps meaning what it meant when it was written.
REPAIRED_STAKE = decimal.Decimal(10**12)
_LOAD_ERRORS = (decimal.InvalidOperation, ValueError, TypeError, OverflowError)


def _loads(bot_model: Any, pk: int) -> bool:
    try:
        stake = bot_model.objects.filter(pk=pk).values_list("stake_amount", flat=True).get()
    except _LOAD_ERRORS:
        return False
    return stake is None or stake.is_finite()  # PostgreSQL's numeric can hold NaN


def repair_unloadable_stakes(bot_model: Any, connection: Any) -> list[int]:
    """Repair every bot whose stake cannot be read back; returns their ids."""
    table = connection.ops.quote_name(bot_model._meta.db_table)
    repaired = []
    for pk in bot_model.objects.order_by("pk").values_list("pk", flat=True):
        if _loads(bot_model, pk):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT stake_amount FROM {table} WHERE id = %s", [pk])  # noqa: S608 - our own table
            (raw,) = cursor.fetchone()
        bot_model.objects.filter(pk=pk).update(
            stake_amount=REPAIRED_STAKE,
            status="error",
            desired_state="stopped",
            status_detail=(
                f"The stake stored for this bot ({raw!r}) could not be read back; on upgrade it was set to "
                f"{REPAIRED_STAKE}, the largest a bot may have. Set the stake you want, then start the bot."
            ),
        )
        repaired.append(pk)
    return repaired


def forwards(apps: Any, schema_editor: Any) -> None:
    repaired = repair_unloadable_stakes(apps.get_model("bots", "Bot"), schema_editor.connection)
    if repaired:
        print(f"\n  Repaired the unreadable stake of bot(s) {', '.join(map(str, repaired))}; see their status_detail.")


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0002_supervision"),
    ]

    operations = [
        migrations.AlterField(
            model_name="bot",
            name="stake_amount",
            field=models.DecimalField(blank=True, decimal_places=8, max_digits=24, null=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
