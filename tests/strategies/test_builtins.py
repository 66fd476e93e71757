"""freqtrade's template strategies, installed as built-ins on the first run through the upload checks."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import freqtrade
import pytest
from django.core.management import call_command

from audit.models import AuditLog
from strategies.library import strategy_file, version_path
from strategies.models import Strategy, StrategyVersion
from tests.factories import make_user

pytestmark = pytest.mark.django_db

TEMPLATES = Path(freqtrade.__file__).parent / "templates"


def test_the_first_run_installs_freqtrades_templates_as_builtins_once(monkeypatch):
    monkeypatch.setenv("MULTIBOT_ADMIN_PASSWORD", "a-chosen-passphrase-77")

    call_command("bootstrap", stdout=io.StringIO())
    call_command("bootstrap", stdout=io.StringIO())

    builtins = Strategy.objects.filter(owner__isnull=True)
    assert sorted(builtins.values_list("name", flat=True)) == [
        "FreqaiExampleHybridStrategy", "FreqaiExampleStrategy", "SampleStrategy",
    ]  # fmt: skip
    assert StrategyVersion.objects.count() == 3  # the second run stored nothing again
    sample = StrategyVersion.objects.get(strategy__name="SampleStrategy")
    template = (TEMPLATES / "sample_strategy.py").read_bytes()
    assert sample.sha256 == hashlib.sha256(template).hexdigest()
    assert version_path(sample.sha256).read_bytes() == template
    assert sample.timeframe == "5m"
    assert {param["name"] for param in sample.hyperopt_parameters} >= {"buy_rsi", "sell_rsi"}
    uploads = AuditLog.objects.filter(action=AuditLog.Action.STRATEGY_UPLOAD)
    assert uploads.count() == 3 and {row.username for row in uploads} == {"system"}


def test_every_user_may_run_a_builtin():
    call_command("bootstrap", stdout=io.StringIO())

    assert strategy_file("SampleStrategy", owner=make_user()) is not None
    assert strategy_file("FreqaiExampleStrategy", owner=make_user()) is not None
