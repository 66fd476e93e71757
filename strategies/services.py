"""Writing strategies: an upload checked, dry-loaded and stored as an immutable version; deletion; built-ins."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from audit import events
from audit.services import Actor
from multibot.errors import ConflictError, ForbiddenError, InvalidInputError, UnavailableError
from strategies import library, validation
from strategies.models import Strategy, StrategyVersion
from strategies.sandbox import DryLoadError, Inspection, dry_load

if TYPE_CHECKING:
    from multibot.models import User

logger = logging.getLogger(__name__)

# freqtrade's template strategies, from the installed package: the built-ins every user may run.
BUILTIN_TEMPLATES = ("sample_strategy.py", "FreqaiExampleStrategy.py", "FreqaiExampleHybridStrategy.py")

# Successful dry loads by content: the same bytes load the same way (bootstrap runs, the same upload again).
_inspected: OrderedDict[str, Inspection] = OrderedDict()
_inspected_lock = threading.Lock()


@functools.cache
def _dry_load_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(max(1, int(settings.STRATEGIES["dry_load_concurrency"])))


def _parameters_sha256(parameters: dict[str, Any] | None) -> str:
    if parameters is None:
        return ""
    return hashlib.sha256(json.dumps(parameters, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _inspect(*, class_name: str, code: bytes, parameters: dict[str, Any] | None) -> Inspection:
    parameter_bytes = None if parameters is None else json.dumps(parameters, indent=2).encode()
    key = hashlib.sha256(code + b"\0" + (parameter_bytes or b"") + class_name.encode()).hexdigest()
    with _inspected_lock:
        if key in _inspected:
            return _inspected[key]
    timeout = settings.STRATEGIES["dry_load_seconds"]
    # Each dry load is a freqtrade import in a child: a burst of uploads queues here rather than
    # taking every core from the requests that keep the fleet running.
    if not _dry_load_slots().acquire(timeout=timeout):
        raise UnavailableError("Too many strategies are being checked at once; try again shortly.")
    try:
        inspection = dry_load(class_name=class_name, code=code, parameters=parameter_bytes, timeout=timeout,
                              private=(Path(settings.HOME),))  # fmt: skip
    except DryLoadError as exc:
        raise InvalidInputError("file", f"freqtrade could not load the strategy: {exc}") from None
    finally:
        _dry_load_slots().release()
    if inspection.timeframe is not None and not validation.is_timeframe(inspection.timeframe):
        raise InvalidInputError("file", f"The strategy's timeframe {inspection.timeframe!r} is not a timeframe "
                                        "freqtrade reads (like '5m', '1h', '1d').")  # fmt: skip
    with _inspected_lock:
        _inspected[key] = inspection
        while len(_inspected) > 256:
            _inspected.popitem(last=False)
    return inspection


def _checked(
    *, filename: str, data: bytes, parameters: bytes | None, strategy_name: str | None
) -> tuple[validation.StrategySource, dict[str, Any] | None]:
    conf = settings.STRATEGIES
    try:
        validation.check_filename(filename)
        if strategy_name is not None:
            validation.check_name("strategy_name", strategy_name, what="The strategy class name")
        text = validation.decode_text("file", data, max_bytes=conf["max_upload_bytes"])
        source = validation.check_source(text, filename=filename, class_name=strategy_name)
        document = None
        if parameters is not None:
            document = validation.check_parameters(parameters, class_name=source.class_name,
                                                   max_bytes=conf["max_parameters_bytes"])  # fmt: skip
    except validation.UploadError as problem:
        raise InvalidInputError(problem.field, problem.message) from None
    return source, document


def strategy_upload(
    *,
    actor: Actor,
    owner: User | None,
    filename: str,
    data: bytes,
    parameters: bytes | None = None,
    strategy_name: str | None = None,
) -> tuple[StrategyVersion, bool]:
    """Check an upload (untrusted code), dry-load it walled in, store it as a version; (version, created).

    ``owner`` None installs a built-in. The same code and parameters again are the same version.
    Raises InvalidInputError naming the problem; nothing is stored then.
    """
    source, document = _checked(filename=filename, data=data, parameters=parameters, strategy_name=strategy_name)
    name = source.class_name
    if owner is not None and Strategy.objects.filter(name=name, owner__isnull=True).exists():
        raise InvalidInputError("file", f"{name!r} is the name of a built-in strategy; rename your class.")
    sha256, parameters_sha256 = hashlib.sha256(data).hexdigest(), _parameters_sha256(document)
    existing = _existing_version(owner=owner, name=name, sha256=sha256, parameters_sha256=parameters_sha256)
    if existing is not None:
        return _uploaded_again(actor=actor, version=existing), False
    # Outside any transaction: the dry load takes seconds and holds no lock.
    inspection = _inspect(class_name=name, code=data, parameters=document)
    library.store_code(data)
    try:
        with transaction.atomic():
            strategy, _ = Strategy.objects.get_or_create(owner=owner, name=name)
            version = StrategyVersion.objects.create(
                strategy=strategy, sha256=sha256, size=len(data), parameters=document,
                parameters_sha256=parameters_sha256, uploaded_by=getattr(actor, "user", None),
                timeframe=inspection.timeframe or "", hyperopt_parameters=inspection.parameters,
            )  # fmt: skip
            Strategy.objects.filter(pk=strategy.pk).update(current_version=version)
            events.strategy_uploaded_event(actor=actor, version=version, new_version=True)
    except IntegrityError:
        # The same upload committed by a concurrent request first: it is this version.
        existing = _existing_version(owner=owner, name=name, sha256=sha256, parameters_sha256=parameters_sha256)
        if existing is None:
            raise
        return _uploaded_again(actor=actor, version=existing), False
    return version, True


def _uploaded_again(*, actor: Actor, version: StrategyVersion) -> StrategyVersion:
    """Stored bytes uploaded again: the same version, which becomes the one bots start with."""
    with transaction.atomic():
        Strategy.objects.filter(pk=version.strategy_id).update(current_version=version)
        events.strategy_uploaded_event(actor=actor, version=version, new_version=False)
    return version


def _existing_version(*, owner: User | None, name: str, sha256: str, parameters_sha256: str) -> StrategyVersion | None:
    return (
        StrategyVersion.objects.select_related("strategy")
        .filter(strategy__owner=owner, strategy__name=name, sha256=sha256, parameters_sha256=parameters_sha256)
        .first()
    )


def strategy_parameters_apply(
    *, actor: Actor, strategy: Strategy, parameters: dict[str, Any], code_sha256: str = ""
) -> tuple[StrategyVersion, bool]:
    """A new version of ``strategy``: its latest code (or the code of its version ``code_sha256``, e.g. the
    one a hyperopt ran) with ``parameters`` (freqtrade's parameter-file format, e.g. hyperopt's best),
    checked and dry-loaded like an upload."""
    versions = strategy.versions.order_by("-created_at", "-id")
    base = versions.filter(sha256=code_sha256).first() if code_sha256 else versions.first()
    if base is None:
        missing = f"no stored version {code_sha256[:12]}" if code_sha256 else "no stored version"
        raise ConflictError(f"Strategy {strategy.name!r} has {missing}.")
    data = library.version_path(base.sha256).read_bytes()
    return strategy_upload(actor=actor, owner=strategy.owner, filename=f"{strategy.name}.py", data=data,
                           parameters=json.dumps(parameters).encode(), strategy_name=strategy.name)  # fmt: skip


def strategy_in_use(*, strategy: Strategy) -> str | None:
    """Why ``strategy`` cannot be deleted now, or None. The hook for whatever else may use a strategy
    (a running bot, an unfinished job)."""
    from bots.models import Bot

    bots = Bot.objects.filter(strategy_name=strategy.name)
    if strategy.owner_id is not None:
        bots = bots.filter(owner_id=strategy.owner_id)
    using = bots.filter(status__in=Bot.ACTIVE_STATUSES) | bots.filter(desired_state=Bot.DesiredState.RUNNING)
    names = sorted(set(using.values_list("name", flat=True)))
    if names:
        return f"Strategy {strategy.name!r} is used by the running bot(s) {', '.join(names)}; stop them first."
    from jobs.selectors import unfinished_jobs_of_strategy

    jobs = unfinished_jobs_of_strategy(name=strategy.name, owner_id=strategy.owner_id)
    if jobs:
        listed = ", ".join(map(str, jobs))
        return f"Strategy {strategy.name!r} is used by unfinished job(s) {listed}; wait, or cancel them."
    return None


def strategy_delete(*, actor: Actor, strategy: Strategy) -> None:
    """Delete the strategy and its versions' rows (the stored files stay: immutable, maybe shared by content)."""
    if strategy.owner_id is None:
        raise ForbiddenError(f"{strategy.name!r} is a built-in strategy; built-ins cannot be deleted.")
    problem = strategy_in_use(strategy=strategy)
    if problem:
        raise ConflictError(problem)
    with transaction.atomic():
        versions, name, owner = strategy.versions.count(), strategy.name, strategy.owner.get_username()
        strategy.delete()
        events.strategy_deleted_event(actor=actor, name=name, owner=owner, versions=versions)


def strategy_source_text(*, version: StrategyVersion) -> str:
    return library.version_path(version.sha256).read_text(encoding="utf-8")


def _templates_dir() -> Path:
    import freqtrade

    return Path(freqtrade.__file__).parent / "templates"


def strategy_install_builtins(*, actor: Actor | None = None) -> list[str]:
    """freqtrade's templates as built-ins, through the same checks as an upload; the names newly stored.

    A template that does not pass is logged and skipped: a first run still comes up.
    """
    actor = actor or Actor.system()
    installed = []
    for filename in BUILTIN_TEMPLATES:
        path = _templates_dir() / filename
        if not path.exists():
            continue
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        if StrategyVersion.objects.filter(strategy__owner__isnull=True, sha256=sha256).exists():
            continue  # installed on an earlier run
        try:
            version, created = strategy_upload(actor=actor, owner=None, filename=filename, data=path.read_bytes())
        except InvalidInputError as exc:
            logger.warning("built-in strategy %s not installed: %s", filename, exc.message)
            continue
        if created:
            installed.append(version.strategy.name)
    return installed
