"""The model cache: predictions of a trained model without a running bot, from predictor child processes
(freqai/predictor.py), one per owner, each holding the LRU of its owner's loaded models, and their statistics.

Users never see each other's objects (DESIGN §8), and a model is its owner's untrusted code: each owner's
models are loaded by a predictor of that owner's own, whose walls let it read only that owner's models'
directories (those that existed when it started; a request for a model made later restarts it with the
new one readable), its own scratch directory (where only that owner's strategy copies are put) and the
stored candles. A strategy can therefore neither read another user's code or artifacts nor tamper with
the modules that load another user's models. At most ``settings.FREQAI["predictors"]`` predictors live in
a web process: starting one more stops the least recently used. Each has its own LRU of ``cache_size``.

A predictor is started on its owner's first request; one found dead is started again (``restarts``
counts it). Its lock serialises its requests (the child answers one at a time) and is waited for at most
``request_timeout_seconds``, as is each answer: then the child's process group is killed and the request
answers 503. So does a child that ends while answering, or that writes anything but the answer awaited:
each request carries a random id the answer echoes, and a line of another id (a strategy writing to the
answer descriptor), not JSON, longer than ``ANSWER_BYTES`` or of unexpected fields has the child killed.
Code in the child that dug out its own request's id could still forge that answer; it would only lie to
its owner. The counters (hits, misses = real loads, evictions) are the child's since it started.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from multibot.errors import ConflictError, InvalidInputError, UnavailableError

if TYPE_CHECKING:
    from freqai.models import FreqaiModel, FreqaiModelVersion

logger = logging.getLogger(__name__)

PREDICTOR = Path(__file__).resolve().with_name("predictor.py")
ANSWER_BYTES = 1 << 20  # an answer line longer than this is no answer of ours


class PredictorError(UnavailableError):
    """The predictor did not answer (timeout, ended, failed to start, answered out of turn, refused to serve)."""


# -- what an answer holds: checked before use (a field missing or of another type is the child's fault) ---------
def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _label(value: Any) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= 200) or _finite(value)


def _stamp(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _labels(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and 0 < len(value) <= 100
        and all(isinstance(name, str) and _label(label) for name, label in value.items())
    )


PREDICTION_FIELDS: dict[str, Callable[[Any], bool]] = {
    "prediction": _label, "labels": _labels, "do_predict": lambda value: _count(value) or value == -1,
    "DI_value": lambda value: value is None or _finite(value), "features_used": _count, "candle": _stamp,
    "cache": lambda value: value in ("hit", "miss"), "load_seconds": lambda value: _finite(value) and value >= 0,
    "predict_seconds": lambda value: _finite(value) and value >= 0,
}  # fmt: skip
STATS_FIELDS: dict[str, Callable[[Any], bool]] = {
    "cached_models": _count, "max_cache_size": _count, "cache_hit_rate": _finite, "total_evictions": _count,
    "hits": _count, "misses": _count, "oldest_access": lambda value: value is None or _stamp(value),
    "newest_access": lambda value: value is None or _stamp(value),
    "since": lambda value: value is None or _stamp(value),
}  # fmt: skip


def _wrong_field(answer: dict[str, Any], fields: dict[str, Callable[[Any], bool]]) -> str | None:
    """The first field of an answer that is missing or not what it should be; None when it is all well."""
    if answer.get("ok") is False:
        return None if isinstance(answer.get("error"), str) else "error"
    if answer.get("ok") is not True:
        return "ok"
    return next((name for name, check in fields.items() if name not in answer or not check(answer[name])), None)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no number of an answer")


class Predictor:
    """The handle on one owner's predictor child: started lazily, restarted when found dead, killed on a
    timeout or a line out of turn. ``roots()`` gives its readable roots, asked at each start."""

    def __init__(self, *, owner_id: int, cache_size: int, timeout: float, home: Path,
                 roots: Callable[[], tuple[Path, ...]], start_timeout: float = 120.0) -> None:  # fmt: skip
        self.owner_id, self.cache_size, self.timeout, self.start_timeout = owner_id, cache_size, timeout, start_timeout
        self.home, self._roots = home, roots
        self.roots: tuple[Path, ...] = ()
        self.process: subprocess.Popen[bytes] | None = None
        self.scratch: Path | None = None
        self.started_at: float | None = None
        self.used = time.monotonic()
        self.starts = 0
        self.retired = False
        self.walls: dict[str, bool] = {}
        self._buffer = b""
        self._lock = threading.Lock()

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def strategy_dir(self, name: str) -> Path:
        """Where the parent puts a version's strategy copy for the child to read (its scratch directory)."""
        self._ensure_started()
        assert self.scratch is not None
        return self.scratch / "strategies" / name

    def request(self, payload: dict[str, Any], *, fields: dict[str, Callable[[Any], bool]], prepare: Any = None,
                needs: Path | None = None) -> dict[str, Any]:  # fmt: skip
        """The child's answer to ``payload``, its ``fields`` checked; ``prepare(predictor, payload)`` runs first,
        under the lock, once the child is up (it writes what the child will read). A child that cannot read
        ``needs`` is started again first. PredictorError when it does not answer in time, or not as it should."""
        if not self._lock.acquire(timeout=self.timeout):
            raise PredictorError(f"The predictor was busy with other requests for {self.timeout:g} s; try again.")
        try:
            if self.retired:
                raise PredictorError("The predictor was stopped to make room for another; try again.")
            self.used = time.monotonic()
            if needs is not None and self.running and needs.resolve() not in self.roots:
                logger.info("predictor of owner %s: a model made since it started; starting it again", self.owner_id)
                self._stop()
            for attempt in (1, 2):
                self._ensure_started()
                if prepare is not None:
                    payload = prepare(self, payload)
                payload = {**payload, "id": secrets.token_hex(16)}
                try:
                    self._send(payload)
                except (BrokenPipeError, OSError):
                    # It died between requests (nothing was delivered): once more, with a new predictor.
                    self._stop()
                    if attempt == 2:
                        raise PredictorError("The predictor could not be reached.") from None
                    continue
                answer = self._answer(self.timeout, payload["id"])
                wrong = _wrong_field(answer, fields)
                if wrong is not None:
                    self._stop()
                    raise PredictorError(f"The predictor's answer had no valid {wrong!r}; it was stopped and "
                                         "starts again on the next request.")  # fmt: skip
                return answer
            raise AssertionError("unreachable")
        finally:
            self._lock.release()

    def stats(self) -> dict[str, Any]:
        answer = self.request({"op": "stats"}, fields=STATS_FIELDS)
        if not answer["ok"]:
            raise PredictorError(f"The predictor gave no statistics: {answer['error']}")
        return {name: answer[name] for name in STATS_FIELDS}

    def retire(self) -> None:
        """Stopped for good (another owner's predictor needs its place): at once when idle; when busy, its group
        is killed and the request it serves answers 503."""
        self.retired = True
        if self._lock.acquire(timeout=self.timeout):
            try:
                self._stop()
            finally:
                self._lock.release()
            return
        process = self.process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # -- the child ------------------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self.running:
            return
        if self.process is not None:
            logger.warning("the predictor ended (exit code %s); starting it again", self.process.returncode)
        self._stop()
        self.roots = tuple(dict.fromkeys(root.resolve() for root in self._roots()))
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
        ready = self._answer(self.start_timeout, None)  # written before any model's code ran: no id
        walls = ready.get("walls")
        self.walls = {name: up for name, up in walls.items() if isinstance(up, bool)} if isinstance(walls, dict) else {}
        if ready.get("ready") is not True or not (self.walls.get("landlock") and self.walls.get("seccomp")):
            self._stop()
            reason = ready.get("error") if isinstance(ready.get("error"), str) else f"walls {self.walls}"
            raise PredictorError(f"The predictor refuses to serve without its walls: {reason[:300]}.")

    def _send(self, payload: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        # Nothing may wait to be read between two requests: bytes there were written out of turn.
        pending = self._buffer
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not pending and selector.select(0):
                pending = os.read(self.process.stdout.fileno(), 1 << 16)
                if not pending:
                    raise BrokenPipeError  # it ended between requests
        if pending:
            self._out_of_turn("between two requests")
        self.process.stdin.write(json.dumps(payload).encode() + b"\n")
        self.process.stdin.flush()

    def _answer(self, timeout: float, expected: str | None) -> dict[str, Any]:
        """The answer line of request ``expected``, within ``timeout`` seconds; else the child's group is killed."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                if len(self._buffer) > ANSWER_BYTES:
                    self._out_of_turn(f"a line of more than {ANSWER_BYTES} bytes")
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
        if len(line) > ANSWER_BYTES:
            self._out_of_turn(f"a line of more than {ANSWER_BYTES} bytes")
        try:
            answer = json.loads(line, parse_constant=_no_constant)
        except ValueError:
            self._out_of_turn("a line that is not JSON")
        if not isinstance(answer, dict) or answer.get("id") != expected:
            self._out_of_turn("a line that is not the answer awaited")
        return answer

    def _out_of_turn(self, what: str) -> Any:
        self._stop()
        raise PredictorError(f"The predictor wrote {what}; it was stopped and starts again on the next request.")

    def _stop(self) -> None:
        process, self.process = self.process, None
        self._buffer = b""
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


class Predictors:
    """The live predictors of this web process, one per owner, at most ``limit``: one more stops the least
    recently used."""

    def __init__(self, *, limit: int, make: Callable[[int], Predictor]) -> None:
        self.limit, self.make = max(1, limit), make
        self.live: dict[int, Predictor] = {}
        self._lock = threading.Lock()

    def of(self, owner_id: int) -> Predictor:
        """The owner's predictor (a new handle when it has none; its child starts on its first request)."""
        with self._lock:
            handle = self.live.get(owner_id)
            if handle is None:
                handle = self.live[owner_id] = self.make(owner_id)
            handle.used = time.monotonic()
            victims = []
            while len(self.live) > self.limit:
                oldest = min((other for other in self.live.values() if other is not handle), key=lambda h: h.used)
                victims.append(self.live.pop(oldest.owner_id))
        for victim in victims:  # outside the lock: a busy one is waited for
            logger.info("stopping the predictor of owner %s to make room", victim.owner_id)
            victim.retire()
        return handle

    def get(self, owner_id: int) -> Predictor | None:
        with self._lock:
            return self.live.get(owner_id)

    def all(self) -> list[Predictor]:
        with self._lock:
            return list(self.live.values())

    def stop(self) -> None:
        with self._lock:
            handles, self.live = list(self.live.values()), {}
        for handle in handles:
            handle.retire()


_registry: Predictors | None = None
_registry_lock = threading.Lock()


def _owner_roots(owner_id: int) -> tuple[Path, ...]:
    """What an owner's predictor may read besides the Python installation and its scratch: the stored candles and
    the directories of that owner's models, as they are now."""
    from freqai.models import FreqaiModel
    from freqai.services import model_dir

    candles = Path(settings.MARKETDATA["dir"]) / "replay"
    candles.mkdir(parents=True, exist_ok=True)
    models = [model_dir(pk) for pk in FreqaiModel.objects.filter(owner_id=owner_id).values_list("pk", flat=True)]
    return (candles, *sorted(directory for directory in models if directory.is_dir()))


def predictors() -> Predictors:
    """This process's predictors, made from settings on first use (each child starts on its first request)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            conf, home = settings.FREQAI, Path(settings.HOME)

            def make(owner_id: int) -> Predictor:
                return Predictor(owner_id=owner_id, cache_size=conf["cache_size"], home=home,
                                 timeout=conf["request_timeout_seconds"],
                                 roots=lambda: _owner_roots(owner_id))  # fmt: skip

            _registry = Predictors(limit=conf["predictors"], make=make)
        return _registry


def predictor_reset() -> None:
    """Stops this process's predictors and forgets them (settings changed: tests, shutdown)."""
    global _registry
    with _registry_lock:
        if _registry is not None:
            _registry.stop()
        _registry = None


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
    from jobs.services import JobInputMissing, job_input_ensure

    def prepare(handle: Predictor, payload: dict[str, Any]) -> dict[str, Any]:
        target = handle.strategy_dir(f"{version.model_id}-{version.version}-{version.job_id}")
        if not target.is_dir():
            try:
                source = job_input_ensure(job=version.job)
            except JobInputMissing as exc:
                raise ConflictError(f"Version {version.version} of model {version.model.name!r} has lost the "
                                    f"strategy it was trained with ({exc}); train it again.") from None  # fmt: skip
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
    from freqai.services import model_dir

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
    handle = predictors().of(model.owner_id)
    answer = handle.request(payload, fields=PREDICTION_FIELDS, prepare=_strategy_copier(version),
                            needs=model_dir(model.pk))  # fmt: skip
    if not answer["ok"]:
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


def _idle(size: int) -> dict[str, Any]:
    return {"cached_models": 0, "max_cache_size": size, "cache_hit_rate": 0.0, "oldest_access": None,
            "newest_access": None, "total_evictions": 0, "hits": 0, "misses": 0, "since": None}  # fmt: skip


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


def cache_stats(*, user: Any) -> dict[str, Any]:
    """The seed's cache statistics, a predictor's own counters since it started (``since``), and its restarts:
    a user's own predictor (an empty cache when none runs; none is started for it); for a superuser, the
    totals over the live predictors and their number (``predictors``)."""
    registry, size = predictors(), settings.FREQAI["cache_size"]
    if not user.is_superuser:
        handle = registry.get(user.pk)
        if handle is None or not handle.running:
            return {**_idle(size), "running": False, "restarts": handle.restarts if handle else 0, "walls": {},
                    "predictor_started_at": None}  # fmt: skip
        return {**handle.stats(), "running": True, "restarts": handle.restarts, "walls": handle.walls,
                "predictor_started_at": _iso(handle.started_at)}  # fmt: skip
    handles = registry.all()
    live = [(handle, handle.stats()) for handle in handles if handle.running]
    if not live:
        return {**_idle(size), "running": False, "restarts": sum(handle.restarts for handle in handles), "walls": {},
                "predictor_started_at": None, "predictors": 0}  # fmt: skip
    figures = [stats for _, stats in live]
    hits, misses = sum(stats["hits"] for stats in figures), sum(stats["misses"] for stats in figures)

    def extreme(pick: Any, name: str) -> str | None:
        found = [stats[name] for stats in figures if stats[name] is not None]
        return pick(found, key=datetime.fromisoformat) if found else None

    return {
        "cached_models": sum(stats["cached_models"] for stats in figures), "max_cache_size": size,
        "cache_hit_rate": round(100.0 * hits / (hits + misses), 1) if hits + misses else 0.0,
        "oldest_access": extreme(min, "oldest_access"), "newest_access": extreme(max, "newest_access"),
        "total_evictions": sum(stats["total_evictions"] for stats in figures), "hits": hits, "misses": misses,
        "since": extreme(min, "since"), "running": True, "restarts": sum(handle.restarts for handle in handles),
        "walls": {name: all(handle.walls.get(name) is True for handle, _ in live) for name in ("landlock", "seccomp")},
        "predictor_started_at": _iso(min(handle.started_at or time.time() for handle, _ in live)),
        "predictors": len(live),
    }  # fmt: skip
