"""First-run preparation for ``make run``: Redis config, migrations, the first superuser, demo candles."""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.services import Actor, audit_record
from marketdata.services import demo_data_ensure
from multibot.embedded_redis import EmbeddedRedis
from multibot.env import env_str


class Command(BaseCommand):
    help = "Migrate the database, prepare the embedded Redis, create the first superuser and store demo candles."

    def handle(self, *args: object, **options: object) -> None:
        if settings.REDIS_EMBEDDED:
            EmbeddedRedis(settings.EMBEDDED_REDIS_DIR).claim_port()
        call_command("migrate", interactive=False, verbosity=0)
        # Before the superuser: its one-time password must stay the last thing printed.
        self.ensure_demo_data()
        self.create_first_superuser()

    def create_first_superuser(self) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return
        username = env_str("MULTIBOT_ADMIN_USER", "admin")
        password = env_str("MULTIBOT_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        with transaction.atomic():
            user = user_model.objects.create_superuser(username=username, password=password, email="")
            audit_record(actor=Actor.system(), action="user_create", resource=f"user:{user.pk}",
                         details={"username": username, "is_superuser": True, "via": "bootstrap"})  # fmt: skip
        self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
        if generated:
            # Shown this once and never stored in clear: the operator must copy it now.
            self.stdout.write(self.style.WARNING(f"Its generated password (shown only now): {password}"))

    def ensure_demo_data(self) -> None:
        """Synthetic candles up to today, so a fresh install can replay and backtest; fast when already there."""
        conf = settings.MARKETDATA
        if not conf["demo_on_bootstrap"]:
            return
        started = time.monotonic()
        written = demo_data_ensure(days=conf["demo_days"])
        elapsed = time.monotonic() - started
        if written:
            pairs = sorted({candle_set.pair for candle_set in written})
            self.stdout.write(f"Stored {len(written)} synthetic demo candle sets ({', '.join(pairs)}), "
                              f"{conf['demo_days']} days to today, in {elapsed:.1f} s.")  # fmt: skip
        else:
            self.stdout.write(f"Synthetic demo candles are up to date ({conf['demo_days']} days to today).")
