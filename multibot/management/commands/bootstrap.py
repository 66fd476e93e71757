"""First-run preparation for ``make run``: Redis config, migrations, the first superuser, demo candles."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from audit import events
from audit.services import Actor
from marketdata.services import demo_data_ensure
from multibot.embedded_redis import EmbeddedRedis
from multibot.env import env_str
from multibot.services.users import password_generate


class Command(BaseCommand):
    help = "Migrate the database, prepare the embedded Redis, create the first superuser and store demo candles."

    def handle(self, *args: object, **options: object) -> None:
        redis_server = None
        if settings.REDIS_EMBEDDED:
            # Up for the length of the bootstrap: what it records is also announced on the bus.
            redis_server = EmbeddedRedis(settings.EMBEDDED_REDIS_DIR)
            if not redis_server.ping():
                redis_server.start()
        try:
            self.prepare()
        finally:
            if redis_server is not None:
                redis_server.stop()

    def prepare(self) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.ensure_demo_data()
        password = self.create_first_superuser()
        self.create_demo_bot()
        if password:
            # Shown this once and never stored in clear, last so the operator sees it: copy it now.
            self.stdout.write(self.style.WARNING(f"Its generated password (shown only now): {password}"))

    def create_first_superuser(self) -> str:
        """The first superuser; returns its password when it was generated (to be printed once)."""
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return ""
        username = env_str("MULTIBOT_ADMIN_USER", "admin")
        password = env_str("MULTIBOT_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = password_generate()
        with transaction.atomic():
            user = user_model.objects.create_superuser(username=username, password=password, email="")
            events.user_created_event(actor=Actor.system(), user=user, via="bootstrap")
        self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
        return password if generated else ""

    def create_demo_bot(self) -> None:
        """On a first run, one dry-run bot on the replay exchange for the first superuser to start."""
        from bots.models import Bot
        from bots.services import bot_create
        from strategies.library import install_builtin_strategies

        install_builtin_strategies()
        if not settings.MARKETDATA["demo_on_bootstrap"] or Bot.objects.exists():
            return
        admin = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        if admin is None:
            return
        bot = bot_create(
            actor=Actor.system(), owner=admin, name="demo", strategy_name="SampleStrategy", exchange="replay",
            stake_currency="USDT", stake_amount=100, timeframe="5m", max_open_trades=3, dry_run=True,
            pair_whitelist=["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"],
        )  # fmt: skip
        self.stdout.write(f"Created the demo bot {bot.name!r} (dry-run, replay exchange, SampleStrategy): "
                          f"start it with POST /api/v1/bots/{bot.pk}/start.")  # fmt: skip

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
