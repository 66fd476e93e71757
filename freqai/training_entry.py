"""``python -m freqai.training_entry --results-json PATH --models-dir PATH backtesting ... --freqaimodel X``.

freqtrade's own CLI, run as ``freqtrade backtesting --freqaimodel`` would, with three additions read by
the worker: a progress line per FreqAI window and pair (from FreqAI's own progress log call), the labels
of each predicted window saved beside FreqAI's prediction file (for the accuracy, freqai.training), and
at the end the backtest's results and the accuracy as JSON. No Django here: this is the subprocess.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from jobs.backtest_entry import _exit_now, _option, progress_line

# The windows' training takes this share of the bar; the backtest on their predictions the rest.
TRAINING_SHARE = 0.9


def _install_hooks() -> None:
    from freqtrade.freqai.data_kitchen import FreqaiDataKitchen
    from freqtrade.freqai.freqai_interface import IFreqaiModel

    from freqai.training import labels_path

    log_progress = IFreqaiModel.log_backtesting_progress

    def reporting_progress(self: Any, tr_train: Any, pair: str, train_it: int, total_trains: int) -> None:
        log_progress(self, tr_train, pair, train_it, total_trains)
        pairs = max(int(self.total_pairs or 1), 1)
        done = (max(self.pair_it - 1, 0) + (train_it - 1) / max(total_trains, 1)) / pairs
        step = f"training {pair} window {train_it}/{total_trains} (pair {self.pair_it}/{pairs})"
        print(progress_line(done * TRAINING_SHARE, step), flush=True)

    get_predictions = FreqaiDataKitchen.get_predictions_to_append

    def keeping_labels(self: Any, predictions: Any, do_predict: Any, dataframe_backtest: Any) -> Any:
        columns = [name for name in dataframe_backtest.columns if name.startswith("&")]
        self._multibot_labels = dataframe_backtest[columns].reset_index(drop=True)
        return get_predictions(self, predictions, do_predict, dataframe_backtest)

    save_prediction = FreqaiDataKitchen.save_backtesting_prediction

    def saving_labels(self: Any, append_df: Any) -> None:
        save_prediction(self, append_df)
        labels = getattr(self, "_multibot_labels", None)
        if labels is not None and len(labels) == len(append_df):
            labels.assign(date=append_df["date"].to_numpy()).to_feather(
                labels_path(Path(self.backtesting_results_path))
            )

    IFreqaiModel.log_backtesting_progress = reporting_progress  # type: ignore[method-assign]
    FreqaiDataKitchen.get_predictions_to_append = keeping_labels  # type: ignore[method-assign]
    FreqaiDataKitchen.save_backtesting_prediction = saving_labels  # type: ignore[method-assign]


def _write_results(argv: list[str], target: str, models: Path) -> None:
    from freqai.training import prediction_accuracy
    from jobs.backtest import read_results

    found = Path(_option(argv, "--backtest-directory") or "")
    results = read_results(found, _option(argv, "--strategy") or "")
    results["accuracy"] = prediction_accuracy(models)
    staging = Path(target + ".tmp")
    staging.write_text(json.dumps(results))
    os.replace(staging, target)


def main(argv: list[str]) -> None:
    target, models = argv[1], Path(argv[3])  # --results-json PATH --models-dir PATH
    argv = argv[4:]
    _install_hooks()
    from freqtrade.main import main as freqtrade_main

    try:
        freqtrade_main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if code == 0:
            print(progress_line(TRAINING_SHARE, "backtest on the predictions done"), flush=True)
            _write_results(argv, target, models)
        _exit_now(code)


if __name__ == "__main__":
    main(sys.argv[1:])
