from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("bots", "0004_desired_state_choices")]

    operations = [
        migrations.RenameField(model_name="bot", old_name="last_heartbeat", new_name="gateway_seen_at"),
        migrations.AddField(model_name="bot", name="api_answered_at", field=models.DateTimeField(blank=True, null=True)),
        migrations.AlterField(
            model_name="bot",
            name="status",
            field=models.CharField(
                choices=[("stopped", "Stopped"), ("starting", "Starting"), ("running", "Running"),
                         ("stopping", "Stopping"), ("error", "Error"), ("unresponsive", "Unresponsive")],
                db_index=True, default="stopped", max_length=16,
            ),  # fmt: skip
        ),
    ]
