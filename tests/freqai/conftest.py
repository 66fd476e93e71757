"""Fixtures of the FreqAI tests: the job tests' stored candles and replay exchange, FreqAI's example strategy."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategies.library import library_dir
from tests.jobs.conftest import candle_sets, history, market, replay_url  # noqa: F401 - fixtures shared


@pytest.fixture(scope="session")
def freqai_strategy() -> Path:
    """freqtrade's FreqaiExampleStrategy in the library (the file the built-in install stores)."""
    import freqtrade

    path = library_dir() / "FreqaiExampleStrategy.py"
    path.write_bytes((Path(freqtrade.__file__).parent / "templates" / "FreqaiExampleStrategy.py").read_bytes())
    return path
