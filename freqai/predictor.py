"""The predictor: a long-lived child process that loads trained FreqAI models behind the dry load's walls,
keeps the loaded ones in an LRU, and answers predictions on the stored candles. No Django here.

Run as ``python -I freqai/predictor.py <scratch dir> <cache size> <private dir> <readable root>...`` (freqai/cache.py
starts it, with an empty environment, in its own process group, the scratch directory as its working
directory). A model is a user's strategy code and FreqAI's pickled pipelines and model: untrusted, so
everything they need is imported first, then the walls go up (strategies/dryload.py: landlock, the
system-call filter, the audit hook, resource limits), and only then is anything of a model loaded.
The readable roots are the Python installation, the scratch directory (the parent copies each
version's strategy there) and the roots given: its owner's models' directories and the stored candles. Nothing
is writable: two FreqAI steps that write (its run parameters, its model directory) are skipped here.

Differences from the dry load's walls, and why: no CPU-time limit (the process lives long; the parent's
per-request timeout kills its group instead), and no RLIMIT_NPROC of 0 beyond what the filter already
refuses (the filter refuses every new process; threads stay refused by the audit hook; OpenMP and the
BLAS libraries are held to one thread by the environment).

Protocol: one JSON object a line on stdin, one JSON answer a line on stdout; the answer descriptor is a
private copy of stdout and file descriptor 1 is pointed at stderr (the parent's log file), so whatever
freqtrade, FreqAI or a strategy prints never mixes with the answers. Requests:

- ``{"op": "predict", "key": [model, version, pair, ready_at], "load": {...}, "candles": N}``: the prediction of
  the key's model on the pair's latest ``N`` stored candles. A cached key reuses the loaded strategy,
  FreqAI model class, data kitchen, pipelines and model (a hit); else they are loaded from ``load``
  (a miss: a real load), the least recently used entry evicted beyond the cache's size.
- ``{"op": "stats"}``: the cache's counters since this process started.

Every request carries an ``id`` (random, the parent's), echoed in its answer: the parent takes no line
that is not the answer of the request it waits for. Every answer is ``{"ok": true, "id": ..., ...}`` or
``{"ok": false, "id": ..., "error": "..."}``. The first line, before any request, says whether the walls
are up: ``{"ok": true, "ready": true, "walls": {...}}``; without both landlock and the system-call
filter it is ``{"ok": false, "ready": false, "error": ...}`` and the process ends without serving.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# What a model may need, imported before the walls (a native library loaded later would be refused).
PRELOAD = (
    "freqtrade.resolvers.strategy_resolver", "freqtrade.resolvers.freqaimodel_resolver",
    "freqtrade.freqai.data_kitchen", "freqtrade.freqai.data_drawer", "freqtrade.freqai.freqai_interface",
    "freqtrade.data.history", "freqtrade.strategy.hyper", "talib.abstract", "datasieve.pipeline",
    "datasieve.transforms", "sklearn.preprocessing", "sklearn.metrics.pairwise", "cloudpickle", "joblib",
)  # fmt: skip
# Model libraries, imported when installed: lightgbm and xgboost load their native library through ctypes.
MODEL_LIBRARIES = ("lightgbm", "lightgbm.sklearn", "xgboost", "catboost", "sklearn.ensemble")
# The identifier FreqAI is given here: its model directory is never used (each window is loaded by its path).
IDENTIFIER = "predictor"
MEMORY_BYTES = 4 * 1024**3
FILE_BYTES = 64 * 1024**2  # the log the parent gave it as stderr

logger = logging.getLogger("freqai.predictor")


def _dryload() -> Any:
    """strategies/dryload.py, by its path: the project itself is not on this process's path."""
    path = Path(__file__).resolve().parent.parent / "strategies" / "dryload.py"
    spec = importlib.util.spec_from_file_location("multibot_dryload", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install_walls(scratch: Path, private: str, roots: tuple[str, ...]) -> dict[str, bool]:
    """The dry load's walls with ``roots`` readable besides the Python installation and ``scratch``; nothing
    else of ``private`` (the home: database, secrets, bots' configs) even where it lies on the Python path."""
    import resource

    dryload = _dryload()
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    python = dryload._readable_roots(scratch, (str(Path(private).resolve()),))
    readable = tuple(sorted({*python, *(str(Path(root).resolve()) for root in roots)}))
    walls = {"landlock": dryload.install_landlock(readable), "seccomp": dryload.install_seccomp()}
    if not (walls["landlock"] and walls["seccomp"]):
        return walls  # main() refuses to serve: nothing of a model is loaded without both kernel walls
    # LightGBM and XGBoost call their native library through ctypes at every prediction (a symbol looked
    # up, a function called, buffers' addresses and strings read): allowed here, where both kernel walls
    # are up. Loading a new library stays refused; what a ctypes call could reach is what the kernel
    # walls leave (no file outside the roots, no process, no socket, no signal).
    native_calls = {"ctypes.dlsym", "ctypes.call_function", "ctypes.addressof", "ctypes.string_at"}
    refused, refused_prefixes = dryload.REFUSED_EVENTS - native_calls, dryload.REFUSED_PREFIXES
    read_events, write_events = dryload.READ_EVENTS, dryload.WRITE_EVENTS
    inside, for_writing, refusal = dryload._inside, dryload._opens_for_writing, dryload.RefusedError
    realpath, fspath = os.path.realpath, os.fspath

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in refused or event.startswith(refused_prefixes):
            raise refusal(f"a model may not use {event}")
        if event not in read_events and event not in write_events:
            return
        target = args[0] if args else None
        if target is None or isinstance(target, int):
            return
        writes = event in write_events or (event == "open" and for_writing(args))
        if writes or not inside(realpath(fspath(target)), readable):
            raise refusal(f"a model may not {'write' if writes else 'read'} {fspath(target)!r}")

    sys.addaudithook(hook)
    return walls


def _quiet_freqai() -> None:
    """FreqAI writes its run parameters and creates its model directory when its class is built: skipped
    here, where nothing is writable and each window is loaded from where the training put it."""
    from freqtrade.freqai import freqai_interface

    def set_full_path(self: Any) -> None:
        self.full_path = Path(self.config["user_data_dir"]) / "models" / IDENTIFIER

    freqai_interface.record_params = lambda config, full_path: None
    freqai_interface.IFreqaiModel.set_full_path = set_full_path  # type: ignore[method-assign]


@dataclass
class Entry:
    """What a cold load costs: the strategy, FreqAI's model class with its data kitchen, the window loaded."""

    strategy: Any
    freqai: Any
    kitchen: Any
    config: dict[str, Any]
    datadir: Path
    loaded_seconds: float
    accessed: float = field(default_factory=time.time)


def _config(load: dict[str, Any], scratch: Path) -> dict[str, Any]:
    from freqtrade.enums import RunMode

    config = dict(load["config"])
    config["freqai"] = {**config["freqai"], "identifier": IDENTIFIER}
    config.update(user_data_dir=scratch, strategy=load["strategy"], strategy_path=load["strategy_dir"],
                  freqaimodel=load["model_type"], runmode=RunMode.DRY_RUN, datadir=load["datadir"])  # fmt: skip
    return config


def load_entry(load: dict[str, Any], pair: str, scratch: Path) -> Entry:
    from freqtrade.freqai.data_kitchen import FreqaiDataKitchen
    from freqtrade.resolvers.freqaimodel_resolver import FreqaiModelResolver
    from freqtrade.resolvers.strategy_resolver import StrategyResolver

    started = time.monotonic()
    config = _config(load, scratch)
    # The strategy runs as the training ran it: the spot subclass in its directory (freqai.training.spot_wrapper),
    # which imports the uploaded module by name; another version's module of the same name must not be reused.
    sys.modules.pop(load["strategy_module"], None)
    try:
        strategy = StrategyResolver.load_strategy(config)
    finally:
        sys.modules.pop(load["strategy_module"], None)
    strategy.ft_bot_start = lambda **kwargs: None  # never started: no data provider, no FreqAI thread of its own
    freqai = FreqaiModelResolver.load_freqaimodel(config)
    kitchen = FreqaiDataKitchen(config, live=True, pair=pair)
    window = load["window"]
    freqai.dd.pair_dict[pair] = {"model_filename": window["model_filename"], "data_path": window["directory"],
                                 "trained_timestamp": window["trained_timestamp"], "extras": {}}  # fmt: skip
    freqai.model = freqai.dd.load_data(pair, kitchen)
    if freqai.model is None:
        raise RuntimeError(f"FreqAI found no model for {pair}")
    freqai.dk, freqai.live = kitchen, True
    # One thread: a joblib pool (the dissimilarity index's distances, a forest's trees) needs semaphores
    # and threads, which the walls refuse; a prediction is one candle anyway.
    for _name, step in getattr(kitchen.feature_pipeline, "steps", []):
        if hasattr(step, "n_jobs"):
            step.n_jobs = 1
    if hasattr(freqai.model, "n_jobs"):
        freqai.model.n_jobs = 1
    # What the strategy's ft_bot_start would set (IStrategy.load_freqAI_model): its FreqAI and FreqAI's config.
    strategy.freqai, strategy.freqai_info = freqai, config["freqai"]
    return Entry(strategy=strategy, freqai=freqai, kitchen=kitchen, config=config, datadir=Path(load["datadir"]),
                 loaded_seconds=time.monotonic() - started)  # fmt: skip


def _candles(datadir: Path, pair: str, timeframe: str, count: int) -> Any:
    from freqtrade.data.history import load_pair_history

    frame = load_pair_history(pair=pair, timeframe=timeframe, datadir=datadir, data_format="feather")
    if frame.empty:
        raise RuntimeError(f"no {timeframe} candles of {pair} are stored")
    return frame.tail(count).reset_index(drop=True)


def predict(entry: Entry, pair: str, count: int) -> dict[str, Any]:
    """The window's prediction for the pair's latest stored candle, its features computed by the strategy's
    own feature engineering (FreqAI's use_strategy_to_populate_indicators) over the last ``count`` candles
    of the pair and its correlated pairs, in every timeframe the model includes."""
    parameters = entry.config["freqai"]["feature_parameters"]
    timeframes = list(dict.fromkeys([entry.config["timeframe"], *parameters.get("include_timeframes", [])]))
    base = {timeframe: _candles(entry.datadir, pair, timeframe, count) for timeframe in timeframes}
    corr = {other: {timeframe: _candles(entry.datadir, other, timeframe, count) for timeframe in timeframes}
            for other in parameters.get("include_corr_pairlist", []) if other != pair}  # fmt: skip
    kitchen, freqai = entry.kitchen, entry.freqai
    frame = kitchen.use_strategy_to_populate_indicators(
        entry.strategy, corr_dataframes=corr, base_dataframes=base, pair=pair,
        prediction_dataframe=base[entry.config["timeframe"]], do_corr_pairs=True,
    )  # fmt: skip
    kitchen.find_labels(frame)
    predictions, do_predict = freqai.predict(frame.iloc[-freqai.CONV_WIDTH :], kitchen, first=False)
    labels = {label: _number(predictions[label].iloc[-1]) for label in kitchen.label_list}
    dissimilarity = kitchen.DI_values[-1] if len(kitchen.DI_values) else None
    return {"prediction": labels[kitchen.label_list[0]], "labels": labels, "do_predict": int(do_predict[-1]),
            "DI_value": None if dissimilarity is None else _number(dissimilarity),
            "features_used": len(kitchen.training_features_list),
            "candle": frame["date"].iloc[-1].isoformat()}  # fmt: skip


def _number(value: Any) -> float | str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)  # a classifier's class
    return number if math.isfinite(number) else None  # NaN and ±inf are no numbers JSON carries


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


class Cache:
    """The LRU of loaded models, keyed by (model id, version, pair), and its counters since it started."""

    def __init__(self, size: int, scratch: Path) -> None:
        self.size, self.scratch = max(1, size), scratch
        self.entries: OrderedDict[tuple[int, int, str, str], Entry] = OrderedDict()
        self.hits = self.misses = self.evictions = 0
        self.started = time.time()

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        model_id, version, pair, ready = request["key"]
        key = (int(model_id), int(version), str(pair), str(ready))
        entry = self.entries.get(key)
        if entry is not None:
            self.hits += 1
            self.entries.move_to_end(key)
            outcome = "hit"
        else:
            self.misses += 1  # a real load, counted whether or not it succeeds
            entry = load_entry(request["load"], key[2], self.scratch)
            self.entries[key] = entry
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
                self.evictions += 1
            outcome = "miss"
        entry.accessed = time.time()
        started = time.monotonic()
        found = predict(entry, key[2], int(request.get("candles") or 500))
        return {**found, "cache": outcome, "predict_seconds": time.monotonic() - started,
                "load_seconds": entry.loaded_seconds if outcome == "miss" else 0.0}  # fmt: skip

    def stats(self) -> dict[str, Any]:
        accessed = [entry.accessed for entry in self.entries.values()]
        total = self.hits + self.misses
        return {
            "cached_models": len(self.entries), "max_cache_size": self.size,
            "cache_hit_rate": round(100.0 * self.hits / total, 1) if total else 0.0,
            "oldest_access": _iso(min(accessed) if accessed else None),
            "newest_access": _iso(max(accessed) if accessed else None),
            "total_evictions": self.evictions, "hits": self.hits, "misses": self.misses,
            "cached": [list(key) for key in self.entries], "since": _iso(self.started),
        }  # fmt: skip


def serve(cache: Cache, requests: Any, answers: Any) -> None:
    for line in requests:
        request: Any = None
        try:
            request = json.loads(line)
            if request.get("op") == "stats":
                answer: dict[str, Any] = {"ok": True, **cache.stats()}
            elif request.get("op") == "predict":
                answer = {"ok": True, **cache.predict(request)}
            else:
                answer = {"ok": False, "error": f"unknown request {request.get('op')!r}"}
        except SystemExit as exc:
            answer = {"ok": False, "error": f"the model exits the interpreter (SystemExit {exc.code!r})"}
        except BaseException as exc:  # any failure of a model is that request's answer
            logger.warning("request failed", exc_info=True)
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        answer["id"] = request.get("id") if isinstance(request, dict) else None
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()


def main() -> None:
    scratch, size, private, roots = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], tuple(sys.argv[4:])
    sys.dont_write_bytecode = True
    sys.path[:] = [entry for entry in sys.path if entry]
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    for module in PRELOAD:
        importlib.import_module(module)
    for module in MODEL_LIBRARIES:
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            importlib.import_module(module)
    _quiet_freqai()
    (scratch / "models").mkdir(exist_ok=True)
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # print() of anything loaded later goes to the log
    sys.stdout = sys.stderr
    walls = install_walls(scratch, private, roots)
    if not (walls["landlock"] and walls["seccomp"]):
        missing = " and ".join(name for name, up in walls.items() if not up)
        refusal = {"ok": False, "ready": False, "walls": walls, "error": f"the kernel walls are not up ({missing})"}
        answers.write(json.dumps(refusal) + "\n")
        answers.flush()
        os._exit(1)
    answers.write(json.dumps({"ok": True, "ready": True, "walls": walls}) + "\n")
    answers.flush()
    serve(Cache(size, scratch), sys.stdin, answers)
    os._exit(0)


if __name__ == "__main__":
    main()
