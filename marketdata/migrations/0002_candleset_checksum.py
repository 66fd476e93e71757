"""Each candle set carries its file's sha256 and size; computed here for the rows whose file exists."""

from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def checksum_existing_files(apps, schema_editor):
    from marketdata.storage import StorageError, candle_path, file_checksum

    CandleSet = apps.get_model("marketdata", "CandleSet")
    for candle_set in CandleSet.objects.filter(sha256=""):
        try:
            path = candle_path(Path(settings.MARKETDATA["dir"]) / candle_set.exchange, candle_set.pair,
                               candle_set.timeframe)  # fmt: skip
            candle_set.sha256, candle_set.size = file_checksum(path)
        except (StorageError, OSError):
            continue  # no file here: the row keeps no checksum (a worker refuses to fetch it)
        candle_set.save(update_fields=["sha256", "size"])


class Migration(migrations.Migration):
    dependencies = [
        ("marketdata", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="candleset",
            name="sha256",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="candleset",
            name="size",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.RunPython(checksum_existing_files, migrations.RunPython.noop),
    ]
