"""The model cache: predictions of a trained model without a running bot, from the predictor child process
(freqai/predictor.py) that holds the LRU of loaded models, and the cache's statistics.

This web process starts the predictor on first use and keeps one handle to it (a lock serialises the
requests: the child answers one at a time). A predictor found dead is started again (``restarts``
counts it). A request that gets no answer within ``settings.FREQAI["request_timeout_seconds"]`` kills
the child's process group and answers 503; so does a child that ends while answering. The counters
(hits, misses = real loads, evictions) are the child's, since it started (``since``): a restarted
predictor starts with an empty cache and counts from zero. Each web process has its own predictor.

The walls keep every model's code away from the host (the database, the secrets, the bots' configs,
the network, other processes), not from each other: one predictor serves every user's models, so a
strategy it runs can read the other cached models (their artifacts are readable to it, and the copies
of the strategies it was given). The statistics are counts only and name no model, so any
authenticated user may read them.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from multibot.errors import ConflictError, InvalidInputError, UnavailableError

if TYPE_CHECKING:
    from freqai.models import FreqaiModel, FreqaiModelVersion

logger = logging.getLogger(__name__)

PREDICTOR = Path(__file__).resolve().with_name("predictor.py")


class PredictorError(UnavailableError):
    """The predictor did not answer (timeout, ended, failed to start)."""


class Predictor:
    """The handle on one predictor child: started lazily, restarted when found dead, killed on a timeout."""

    def __init__(self, *, cache_size: int, timeout: float, home: Path, roots: tuple[Path, ...],
                 start_timeout: float = 120.0) -> None:  # fmt: skip
        self.cache_size, self.timeout, self.start_timeout = cache_size, timeout, start_timeout
        self.home, self.roots = home, roots
        self.process: subprocess.Popen[bytes] | None = None
        self.scratch: Path | None = None
        self.started_at: float | None = None
        self.starts = 0
        self.walls: dict[str, bool] = {}
        self._buffer = b""
        self._lock = threading.Lock()

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    def strategy_dir(self, name: str) -> Path:
        """Where the parent puts a version's strategy copy for the child to read (its scratch directory)."""
        self._ensure_started()
        assert self.scratch is not None
        return self.scratch / "strategies" / name

    def request(self, payload: dict[str, Any], *, prepare: Any = None) -> dict[str, Any]:
        """The child's answer to ``payload``; ``prepare(predictor)`` runs first, under the lock, once the child is
        up (it writes what the child will read). PredictorError when it does not answer in time."""
        with self._lock:
            for attempt in (1, 2):
                self._ensure_started()
                if prepare is not None:
                    payload = prepare(self, payload)
                try:
                    self._send(payload)
                except (BrokenPipeError, OSError):
                    # It died between requests (nothing was delivered): once more, with a new predictor.
                    self._stop()
                    if attempt == 2:
                        raise PredictorError("The predictor could not be reached.") from None
                    continue
                return self._answer(self.timeout)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        with self._lock:
            self._stop()

    # -- the child ------------------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        if self.process is not None:
            logger.warning("the predictor ended (exit code %s); starting it again", self.process.returncode)
        self._stop()
        self.scratch = Path(tempfile.mkdtemp(prefix="freqai-predictor-"))
        (self.scratch / "strategies").mkdir()
        log = (self.home / "logs").resolve()
        log.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.scratch), "LANG": "C.UTF-8",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMEXPR_MAX_THREADS": "1"}  # fmt: skip
        argv = [sys.executable, "-I", str(PREDICTOR), str(self.scratch), str(self.cache_size), str(self.home),
                *map(str, self.roots)]  # fmt: skip
        with open(log / "freqai-predictor.log", "ab") as stderr:
            self.process = subprocess.Popen(argv, cwd=self.scratch, env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
                                            close_fds=True)  # fmt: skip
        self._buffer = b""
        self.starts += 1
        self.started_at = time.time()
        ready = self._answer(self.start_timeout)
        self.walls = dict(ready.get("walls") or {})

    def _send(self, payload: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(payload).encode() + b"\n")
        self.process.stdin.flush()

    def _answer(self, timeout: float) -> dict[str, Any]:
        """The next answer line, within ``timeout`` seconds; else the child's group is killed."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self._stop()
                    raise PredictorError(f"The predictor gave no answer within {timeout:g} s; it was stopped "
                                         "and starts again on the next request.")  # fmt: skip
                chunk = os.read(stdout.fileno(), 1 << 16)
                if not chunk:
                    code = self.process.wait()
                    self._stop()
                    raise PredictorError(f"The predictor ended while answering (exit code {code}); it starts "
                                         "again on the next request.")  # fmt: skip
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            for kill in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):
                try:
                    kill()
                except (ProcessLookupError, PermissionError):
                    pass
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


_handle: Predictor | None = None
_handle_lock = threading.Lock()


def predictor() -> Predictor:
    """This process's predictor handle, made from settings on first use (the child starts on its first request)."""
    global _handle
    with _handle_lock:
        if _handle is None:
            from freqai.services import models_root

            conf = settings.FREQAI
            root = models_root()
            root.mkdir(parents=True, exist_ok=True)
            candles = Path(settings.MARKETDATA["dir"]) / "replay"
            candles.mkdir(parents=True, exist_ok=True)
            _handle = Predictor(cache_size=conf["cache_size"], timeout=conf["request_timeout_seconds"],
                                home=Path(settings.HOME), roots=(root, candles))  # fmt: skip
        return _handle


def predictor_reset() -> None:
    """Stops this process's predictor and forgets the handle (settings changed: tests, shutdown)."""
    global _handle
    with _handle_lock:
        if _handle is not None:
            _handle.stop()
        _handle = None


# -- predictions and statistics --------------------------------------------------------------------------
def _trained_version(model: FreqaiModel) -> FreqaiModelVersion:
    from freqai.selectors import latest_ready_version

    version = latest_ready_version(model)
    if version is None:
        raise ConflictError(
            f"Model {model.name!r} is not trained yet: train it first (POST /freqai/models/{model.pk}/train)."
        )
    return version


def _load(model: FreqaiModel, version: FreqaiModelVersion, pair: str) -> dict[str, Any]:
    """What the predictor needs to load the version's window of ``pair``: the training's config, strategy and paths."""
    from freqai import training
    from freqai.artifacts import ArtifactsError, pair_models

    job = version.job
    if job is None:
        raise ConflictError(f"Version {version.version} of model {model.name!r} has lost its training job, and "
                            "with it the strategy it was trained with; train the model again.")  # fmt: skip
    try:
        window = pair_models(Path(settings.HOME) / version.artifacts_dir)[pair]
    except (ArtifactsError, KeyError) as exc:
        raise ConflictError(
            f"Version {version.version} of model {model.name!r} has no usable model for {pair}: {exc}"
        ) from None
    parameters = dict(job.parameters)
    section = {"name": "binance", "pair_whitelist": list(parameters["pairs"])}
    config = training.render_config(parameters, exchange_section=section)
    return {
        "config": config, "model_type": parameters["model_type"],
        "strategy": parameters["strategy_name"] + training.SPOT_SUFFIX, "strategy_module": parameters["strategy_name"],
        "datadir": str(Path(settings.MARKETDATA["dir"]) / "replay"),
        "window": {"directory": str(window.directory), "model_filename": window.model_filename,
                   "trained_timestamp": window.trained_timestamp},
    }  # fmt: skip


def _strategy_copier(version: FreqaiModelVersion) -> Any:
    """Copies the training's strategy (and the spot wrapper it ran) where the child reads it, once per version."""
    from freqai import training
    from jobs.services import job_input_ensure

    def prepare(handle: Predictor, payload: dict[str, Any]) -> dict[str, Any]:
        target = handle.strategy_dir(f"{version.model_id}-{version.version}-{version.job_id}")
        if not target.is_dir():
            source = job_input_ensure(job=version.job)
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for item in [*source.glob("*.py"), *source.glob("*.json")]:
                shutil.copyfile(item, staging / item.name)
            name = version.job.parameters["strategy_name"]
            (staging / f"{name}{training.SPOT_SUFFIX}.py").write_text(training.spot_wrapper(name))
            os.rename(staging, target)
        payload["load"]["strategy_dir"] = str(target)
        return payload

    return prepare


def model_prediction(*, model: FreqaiModel, pair: str | None, timeframe: str | None) -> dict[str, Any]:
    """The newest ready version's prediction for the pair's latest stored candle (the seed's bot predictions'
    shape), from the model cache; ``cache`` says whether the model was loaded for it (``miss``)."""
    from freqai.artifacts import confidence

    version = _trained_version(model)
    pair = pair or (version.pairs[0] if version.pairs else "")
    if pair not in version.pairs:
        trained = ", ".join(version.pairs)
        raise InvalidInputError("pair", location="query", message=f"Version {version.version} of model "
                                f"{model.name!r} was trained for {trained}, not {pair}.")  # fmt: skip
    if timeframe and timeframe != model.timeframe:
        raise InvalidInputError(
            "timeframe",
            location="query",
            message=f"Model {model.name!r} predicts {model.timeframe} candles, not {timeframe}.",
        )
    load = _load(model, version, pair)
    # The version's ready time is in the key too: a key never names files other than those it was loaded from.
    key = [model.pk, version.version, pair, version.ready_at.isoformat() if version.ready_at else ""]
    payload = {"op": "predict", "key": key, "load": load,
               "candles": settings.FREQAI["prediction_candles"]}  # fmt: skip
    answer = predictor().request(payload, prepare=_strategy_copier(version))
    if not answer.get("ok"):
        raise ConflictError(f"Model {model.name!r} could not predict {pair}: {answer.get('error')}")
    threshold = float(load["config"]["freqai"]["feature_parameters"].get("DI_threshold") or 0)
    return {
        "status": "success", "model_id": model.pk, "model_version": version.version,
        "model_path": str(Path(version.artifacts_dir) / Path(load["window"]["directory"]).name),
        "predictions": {
            "prediction": answer["prediction"], "labels": answer["labels"],
            "confidence": confidence(answer["do_predict"], answer["DI_value"], threshold),
            "do_predict": answer["do_predict"], "DI_value": answer["DI_value"],
            "features_used": answer["features_used"], "candle": answer["candle"],
        },
        "parameters": {"pair": pair, "timeframe": model.timeframe, "strategy": model.strategy_name},
        "cache": answer["cache"],
        # In the predictor: loading the model (a miss), then its features and prediction.
        "timings": {"load_seconds": round(answer["load_seconds"], 6),
                    "predict_seconds": round(answer["predict_seconds"], 6)},
    }  # fmt: skip


def cache_stats() -> dict[str, Any]:
    """The seed's cache statistics, the predictor's own counters since it started (``since``), and its restarts.
    Answered without starting a predictor that is not running: an empty cache."""
    from datetime import UTC, datetime

    handle = predictor()
    running = handle.process is not None and handle.process.poll() is None
    if running:
        answer = handle.request({"op": "stats"})
        answer.pop("ok", None)
        answer.pop("cached", None)
    else:
        answer = {"cached_models": 0, "max_cache_size": handle.cache_size, "cache_hit_rate": 0.0,
                  "oldest_access": None, "newest_access": None, "total_evictions": 0, "hits": 0, "misses": 0,
                  "since": None}  # fmt: skip
    started = datetime.fromtimestamp(handle.started_at, UTC).isoformat() if handle.started_at and running else None
    return {**answer, "running": running, "restarts": handle.restarts, "walls": handle.walls if running else {},
            "predictor_started_at": started}  # fmt: skip
