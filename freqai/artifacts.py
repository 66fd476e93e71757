"""A ready version's artifacts as freqtrade's FreqAI reads them: each pair's newest trained window, and a
copy laid out for a live bot. No Django here.

A version's directory (``MULTIBOT_HOME/freqai/<model>/<version>/``) is FreqAI's own model directory of the
training, moved whole: one ``sub-train-<COIN>_<stamp>`` directory per pair and window (its model, its
feature and label pipelines, its metadata) and ``pair_dictionary.json``, FreqAI's record of each pair's
newest window (``model_filename``, ``trained_timestamp``, ``data_path``). The training wrote
``data_path`` as an absolute path into the job's directory; everything here re-roots it to where the
files are now.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

PAIR_DICTIONARY = "pair_dictionary.json"
_WINDOW = re.compile(r"^sub-train-[A-Za-z0-9_.-]+$")  # FreqAI's sub-train-<COIN>_<stamp>
_FILENAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # cb_<coin>_<stamp>


class ArtifactsError(Exception):
    """A version's artifacts are missing or not what a finished training writes."""


@dataclass(frozen=True)
class PairModel:
    """One pair's newest trained window: FreqAI's files ``<directory>/<model_filename>_*``."""

    pair: str
    directory: Path
    model_filename: str
    trained_timestamp: int  # the end of the window's training data, epoch seconds (FreqAI's own stamp)

    @property
    def metadata(self) -> Path:
        return self.directory / f"{self.model_filename}_metadata.json"

    def features(self) -> list[str]:
        """The features the model was trained on, in FreqAI's order (its metadata's training_features_list)."""
        return list(json.loads(self.metadata.read_text())["training_features_list"])

    def labels(self) -> list[str]:
        return list(json.loads(self.metadata.read_text())["label_list"])


def pair_models(artifacts: Path) -> dict[str, PairModel]:
    """Each pair's newest window in ``artifacts``, from FreqAI's pair dictionary, its files checked."""
    try:
        recorded = json.loads((artifacts / PAIR_DICTIONARY).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactsError(f"{artifacts.name}: no readable {PAIR_DICTIONARY} ({exc})") from None
    if not isinstance(recorded, dict):
        raise ArtifactsError(f"{artifacts.name}: {PAIR_DICTIONARY} is not FreqAI's pair dictionary")
    found = {}
    for pair, entry in recorded.items():
        if not isinstance(entry, dict) or not entry.get("model_filename"):
            continue
        # Names only, never paths: a pair dictionary a bot's own freqtrade rewrote is read here too.
        name, filename = Path(str(entry.get("data_path") or "")).name, str(entry["model_filename"])
        if not _WINDOW.match(name) or not _FILENAME.match(filename):
            raise ArtifactsError(f"{artifacts.name}: the pair dictionary names {name!r}/{filename!r} for {pair}")
        directory = artifacts / name  # the window's directory, wherever it was written
        model = PairModel(pair=pair, directory=directory, model_filename=filename,
                          trained_timestamp=int(entry.get("trained_timestamp") or 0))  # fmt: skip
        if not model.metadata.is_file() or not any(directory.glob(f"{model.model_filename}_model.*")):
            raise ArtifactsError(f"{artifacts.name}: the model of {pair} is missing from {directory.name}")
        found[pair] = model
    return found


def install_live(artifacts: Path, target: Path, *, pairs: list[str]) -> dict[str, PairModel]:
    """``target`` (a bot's ``user_data/models/<identifier>``) becomes a copy of ``pairs``' newest windows with
    FreqAI's pair dictionary pointing at the copy, so a live FreqAI loads them as models it trained itself.
    Written beside ``target`` and renamed into place: a bot never sees half a copy."""
    models = pair_models(artifacts)
    missing = [pair for pair in pairs if pair not in models]
    if missing:
        raise ArtifactsError(f"the version has no model for {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    installed, dictionary = {}, {}
    for pair in pairs:
        model = models[pair]
        shutil.copytree(model.directory, staging / model.directory.name)
        placed = PairModel(pair=pair, directory=target / model.directory.name, model_filename=model.model_filename,
                           trained_timestamp=model.trained_timestamp)  # fmt: skip
        installed[pair] = placed
        dictionary[pair] = {"model_filename": placed.model_filename, "trained_timestamp": placed.trained_timestamp,
                            "data_path": str(placed.directory), "extras": {}}  # fmt: skip
    (staging / PAIR_DICTIONARY).write_text(json.dumps(dictionary))
    if target.exists():
        shutil.rmtree(target)
    os.rename(staging, target)
    return installed


def confidence(do_predict: float | None, dissimilarity: float | None, threshold: float) -> float | None:
    """How much a prediction can be trusted, 0..1, from FreqAI's own outlier verdicts on its candle:
    0 when FreqAI set ``do_predict`` to anything but 1 (an outlier, or no model); else
    ``1 - DI / DI_threshold`` floored at 0, the dissimilarity index being how far the candle's features lie
    from the training data's (0: like the training data; the threshold: an outlier). None when FreqAI
    computed no dissimilarity index (``DI_threshold`` 0)."""
    if do_predict is None or dissimilarity is None or threshold <= 0:
        return None if do_predict == 1 or do_predict is None else 0.0
    if do_predict != 1:
        return 0.0
    return round(max(0.0, 1.0 - float(dissimilarity) / threshold), 6)
