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


@pytest.fixture(scope="session")
def eager_freqai_strategy() -> Path:
    """FreqaiExampleStrategy entering a long on any prediction of its model above -100% (the example asks
    for +1% and FreqAI's trust, ``do_predict`` 1): a bot on it enters on the first candle its model predicts,
    so a test sees, within seconds of a start, a trade made on the model. Its features and targets are the
    example's own."""
    import freqtrade

    source = (Path(freqtrade.__file__).parent / "templates" / "FreqaiExampleStrategy.py").read_text()
    eager = source.replace("class FreqaiExampleStrategy(", "class FreqaiEagerStrategy(").replace(
        'df["do_predict"] == 1,\n            df["&-s_close"] > 0.01,', 'df["&-s_close"] > -1,'
    )
    assert eager.count("FreqaiEagerStrategy") == 1 and eager.count('df["&-s_close"] > -1,') == 1
    path = library_dir() / "FreqaiEagerStrategy.py"
    path.write_text(eager)
    return path
