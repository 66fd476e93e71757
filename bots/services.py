"""Every write to a bot: create, update, delete. Each runs in one transaction with its audit row.

The bot rules (bots.validation) and name uniqueness are checked here, once, whoever calls: the API,
a management command or a test. Refusals are domain errors (multibot.errors), never HTTP ones.
"""

from __future__ import annotations

import enum
import functools
import secrets
import socket
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit import events
from audit.services import Actor
from bots.commands import (
    ACTIVE_STATUSES,
    BotCommand,
    BotStatus,
    BotStatusReport,
    Command,
    DesiredState,
    EmergencyStop,
    GatewayHeartbeat,
    HostCapacity,
    build_bot_command,
    build_bot_status,
    build_emergency_stop,
)
from bots.ftconfig import UNLIMITED_STAKE
from bots.models import Bot
from bots.selectors import LIFECYCLE_FIELDS
from bots.validation import REPLAY_EXCHANGE, BotConfig, ConfigError, check_bot
from marketdata.selectors import replay_market_pairs
from multibot.errors import ConflictError, InvalidInputError, UnavailableError
from streams.catalog import TRADING_COMMANDS

if TYPE_CHECKING:
    from freqai.models import FreqaiModel, FreqaiModelVersion
    from multibot.models import User

_SECRET_FIELDS = frozenset({"exchange_key", "exchange_secret"})


class Keep(enum.Enum):
    """A keyword left out of ``bot_update``: the bot keeps the value it has."""

    KEEP = "keep"


KEEP = Keep.KEEP


@functools.cache
def known_exchanges() -> frozenset[str]:
    import ccxt  # heavy import: only when a bot names a real exchange

    return frozenset(ccxt.exchanges)


def _replay_markets() -> frozenset[str]:
    return frozenset(replay_market_pairs())


def bot_validate(*, bot: Bot, changed: Sequence[str]) -> None:
    """The bot as it would be saved, against every rule; InvalidInputError names the first broken one.

    ``changed`` names the fields that differ from the stored bot (every field for a new one): rules
    that ask the outside world (ccxt, the replay's markets) run only when theirs changed.
    """
    config = BotConfig(
        name=bot.name, strategy_name=bot.strategy_name, exchange=bot.exchange, stake_currency=bot.stake_currency,
        stake_amount=bot.stake_amount, timeframe=bot.timeframe, pair_whitelist=tuple(bot.pair_whitelist),
        max_open_trades=bot.max_open_trades, dry_run=bot.dry_run, has_keys=bot.has_exchange_keys,
    )  # fmt: skip
    try:
        check_bot(config, changed=changed, known_exchanges=known_exchanges, replay_markets=_replay_markets)
    except ConfigError as exc:
        raise InvalidInputError(exc.field, str(exc)) from exc


def _name_taken(name: str) -> InvalidInputError:
    return InvalidInputError("name", f"You already have a bot named {name!r}.")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _allocate_api_port() -> int:
    """The lowest port of the range that no bot holds (running or not) and no program listens on."""
    first, last = settings.BOTS["api_port_first"], settings.BOTS["api_port_last"]
    held = set(Bot.objects.filter(api_port__range=(first, last)).values_list("api_port", flat=True))
    for port in range(first, last + 1):
        if port not in held and _port_is_free(port):
            return port
    raise UnavailableError(f"No free bot API port left in {first}-{last}; widen MULTIBOT_BOT_PORT_FIRST/LAST.")


def _public_changes(fields: dict[str, Any]) -> dict[str, Any]:
    """What an audit row may say about the fields: values, except secrets which are only named."""
    return {
        name: ("<set>" if value else "<cleared>") if name in _SECRET_FIELDS else _jsonable(name, value)
        for name, value in fields.items()
    }


def _jsonable(name: str, value: Any) -> Any:
    # Audit details are JSON: a Decimal stake is written as exact text, no stake as freqtrade's word.
    if name == "stake_amount" and value is None:
        return UNLIMITED_STAKE
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return list(value) if isinstance(value, tuple) else value


def _model_as_id(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as an audit row tells them: the model by its id."""
    if "freqai_model" not in fields:
        return fields
    model = fields["freqai_model"]
    return {**{k: v for k, v in fields.items() if k != "freqai_model"}, "freqai_model_id": model and model.pk}


def _check_host(host: str) -> None:
    """A bot is pinned only to a host whose gateway has registered it (or to none: "")."""
    from bots.models import Host

    if host and not Host.objects.filter(name=host).exists():
        raise InvalidInputError("host", f"No host named {host!r} has registered; its gateway registers it on start.")


def _stake(amount: Decimal | int | None) -> Decimal | None:
    return None if amount is None else Decimal(amount)


def _owned_model(model_id: int, *, owner: User) -> FreqaiModel:
    """``owner``'s model with a ready version; another user's model is no model of theirs."""
    from freqai.models import FreqaiModel

    model = FreqaiModel.objects.filter(pk=model_id, owner=owner).first()
    if model is None:
        raise InvalidInputError("freqai_model_id", f"You have no FreqAI model {model_id}.")
    return model


def newest_ready_version(model: FreqaiModel) -> FreqaiModelVersion | None:
    return model.versions.filter(ready_at__isnull=False).order_by("-version").first()


def _check_model(bot: Bot, model: FreqaiModel, version_number: int | None) -> None:
    """A bot runs a model only as it was trained: its strategy, its timeframe, pairs it has a model of (the
    version's training's, which later edits of the model do not change)."""
    version = model.versions.select_related("job").filter(version=version_number, ready_at__isnull=False).first()
    if version is None:
        raise InvalidInputError("freqai_model_id", f"Model {model.name!r} has no ready version; train it first.")
    trained = (version.job.parameters if version.job else None) or {}
    strategy, timeframe = trained.get("strategy_name", model.strategy_name), trained.get("timeframe", model.timeframe)
    if bot.strategy_name != strategy:
        raise InvalidInputError("strategy_name", f"Version {version.version} of model {model.name!r} was trained "
                                f"with strategy {strategy!r}, the bot runs {bot.strategy_name!r}.")  # fmt: skip
    if bot.timeframe != timeframe:
        raise InvalidInputError("timeframe", f"Version {version.version} of model {model.name!r} is trained on "
                                f"{timeframe} candles, the bot trades {bot.timeframe}.")  # fmt: skip
    if not bot.pair_whitelist:
        raise InvalidInputError("pair_whitelist", "A bot with a FreqAI model lists its pairs (the model's "
                                f"trained pairs: {', '.join(version.pairs)}).")  # fmt: skip
    untrained = [pair for pair in bot.pair_whitelist if pair not in version.pairs]
    if untrained:
        trained = ", ".join(version.pairs)
        raise InvalidInputError("pair_whitelist", f"Version {version.version} of model {model.name!r} has no "
                                f"model of {', '.join(untrained)}; it is trained on {trained}.")  # fmt: skip


def bot_create(
    *,
    actor: Actor,
    owner: User,
    name: str,
    strategy_name: str,
    stake_amount: Decimal | int | None,
    exchange: str = REPLAY_EXCHANGE,
    stake_currency: str = "USDT",
    timeframe: str = "5m",
    pair_whitelist: Sequence[str] = (),
    max_open_trades: int = 3,
    dry_run: bool = True,
    exchange_key: str = "",
    exchange_secret: str = "",
    host: str = "",
    freqai_model_id: int | None = None,
) -> Bot:
    """A new stopped bot of ``owner``. ``stake_amount`` None is "unlimited"; no pairs on the replay
    exchange means every stored pair of the stake currency (resolved at each start). ``host`` pins it
    to a registered host; "" lets its first start place it. ``freqai_model_id``: the owner's FreqAI model
    it runs, pinned to its newest ready version (no pairs given: that version's pairs)."""
    model = None if freqai_model_id is None else _owned_model(freqai_model_id, owner=owner)
    ready = None if model is None else newest_ready_version(model)
    if model is not None and not pair_whitelist and ready is not None:
        pair_whitelist = ready.pairs
    fields: dict[str, Any] = {
        "name": name, "strategy_name": strategy_name, "exchange": exchange, "stake_currency": stake_currency,
        "stake_amount": _stake(stake_amount), "timeframe": timeframe, "pair_whitelist": list(pair_whitelist),
        "max_open_trades": max_open_trades, "dry_run": dry_run,
        "exchange_key": exchange_key, "exchange_secret": exchange_secret, "host": host,
    }  # fmt: skip
    _check_host(host)
    bot_validate(bot=Bot(owner=owner, **fields), changed=list(fields))
    if model is not None:
        _check_model(Bot(owner=owner, **fields), model, None if ready is None else ready.version)
        fields.update(freqai_model=model, freqai_version=ready.version if ready else None)
    for attempt in range(3):
        try:
            with transaction.atomic():
                bot = Bot.objects.create(
                    owner=owner,
                    api_port=_allocate_api_port(),
                    api_username=f"multibot-{secrets.token_hex(4)}",
                    api_password=secrets.token_urlsafe(24),
                    jwt_secret_key=secrets.token_hex(32),
                    ws_token=secrets.token_urlsafe(24),
                    **fields,
                )
                if host:  # pinned: its port from that host's range
                    bot.api_port = bot_port_on_host(bot_id=bot.pk, port=bot.api_port, host=host)
                events.bot_created_event(actor=actor, bot=bot, changes=_public_changes(_model_as_id(fields)))
                return bot
        except IntegrityError as exc:
            # The constraint is the one check of name uniqueness; the read only says which one failed.
            if Bot.objects.filter(owner=owner, name=name).exists():
                raise _name_taken(name) from exc
            if attempt == 2:
                raise
            # Another request took the same port between our check and insert: pick again.
    raise AssertionError("unreachable")


# A change to one of these is checked against the bot's FreqAI model: it runs only as the model was trained.
_MODEL_FIELDS = frozenset({"freqai_model", "strategy_name", "timeframe", "pair_whitelist"})
# A change to one of these makes the bot's last-read wallet another wallet's.
WALLET_FIELDS = frozenset({"dry_run", "stake_currency", "exchange"})


def bot_update(
    *,
    actor: Actor,
    bot: Bot,
    name: str | Keep = KEEP,
    strategy_name: str | Keep = KEEP,
    stake_amount: Decimal | int | Keep | None = KEEP,
    exchange: str | Keep = KEEP,
    stake_currency: str | Keep = KEEP,
    timeframe: str | Keep = KEEP,
    pair_whitelist: Sequence[str] | Keep = KEEP,
    max_open_trades: int | Keep = KEEP,
    dry_run: bool | Keep = KEEP,
    exchange_key: str | Keep = KEEP,
    exchange_secret: str | Keep = KEEP,
    host: str | Keep = KEEP,
    freqai_model_id: int | Keep | None = KEEP,
) -> Bot:
    """Change a stopped bot; the bot is checked as it would become, and a left-out keyword is kept.
    ``host``: pin it to a registered host, or "" to let its next start place it. ``freqai_model_id``: its
    owner's FreqAI model it runs (pinned to the newest ready version), None: none."""
    given: dict[str, Any] = {
        "name": name, "strategy_name": strategy_name, "exchange": exchange, "stake_currency": stake_currency,
        "stake_amount": stake_amount if stake_amount is KEEP else _stake(stake_amount), "timeframe": timeframe,
        "pair_whitelist": pair_whitelist if pair_whitelist is KEEP else list(pair_whitelist),
        "max_open_trades": max_open_trades, "dry_run": dry_run,
        "exchange_key": exchange_key, "exchange_secret": exchange_secret, "host": host,
    }  # fmt: skip
    if host is not KEEP:
        _check_host(host)
    with transaction.atomic():
        bot = Bot.objects.select_for_update().get(pk=bot.pk)
        if bot.is_active:
            raise ConflictError("The bot is running; stop it before changing its configuration.")
        changed = {field: value for field, value in given.items() if value is not KEEP and getattr(bot, field) != value}
        if freqai_model_id is not KEEP and freqai_model_id != bot.freqai_model_id:
            model = None if freqai_model_id is None else _owned_model(freqai_model_id, owner=bot.owner)
            ready = None if model is None else newest_ready_version(model)
            changed.update(freqai_model=model, freqai_version=None if ready is None else ready.version)
            if bot.desired_state == DesiredState.RUNNING:
                raise ConflictError(f"Bot {bot.name} is to run; stop it before changing its FreqAI model.")
        if "host" in changed and bot.desired_state == DesiredState.RUNNING:
            # Its start may be in its old host's hands right now: a bot changes host only while it stays stopped.
            where = bot.host or "its first host"
            raise ConflictError(f"Bot {bot.name} is to run on {where}; stop it before moving it.")
        for field, value in changed.items():
            setattr(bot, field, value)
        bot_validate(bot=bot, changed=list(changed))
        if bot.freqai_model_id is not None and changed.keys() & _MODEL_FIELDS:
            _check_model(bot, bot.freqai_model, bot.freqai_version)
        try:
            with transaction.atomic():
                bot.save()
        except IntegrityError as exc:
            raise _name_taken(bot.name) from exc
        if changed.get("host"):  # pinned: its port from that host's range
            bot.api_port = bot_port_on_host(bot_id=bot.pk, port=bot.api_port, host=bot.host)
        if changed.keys() & WALLET_FIELDS:
            from analytics.models import BotBalance

            # The wallet last read belongs to the old market or mode: it must not be counted in the new one.
            BotBalance.objects.filter(bot=bot).delete()
        events.bot_updated_event(actor=actor, bot=bot, changes=_public_changes(_model_as_id(changed)))
    return bot


def bot_model_reload(*, actor: Actor, bot: Bot) -> dict[str, Any]:
    """Pin the bot to its model's newest ready version; a bot that runs (or is to) is restarted on it
    through its gateway (which prepares its directory again: the new version's files and identifier)."""
    with transaction.atomic():
        bot = Bot.objects.select_for_update().only(*LIFECYCLE_FIELDS, "freqai_model", "freqai_version").get(pk=bot.pk)
        if bot.freqai_model_id is None:
            raise ConflictError(f"Bot {bot.name} runs no FreqAI model; set freqai_model_id first.")
        ready = newest_ready_version(bot.freqai_model)
        if ready is None:
            raise ConflictError(f"Model {bot.freqai_model.name!r} has no ready version; train it first.")
        try:  # the newest version may be trained otherwise than the one the bot runs
            _check_model(Bot.objects.get(pk=bot.pk), bot.freqai_model, ready.version)
        except InvalidInputError as refused:
            raise ConflictError(f"Bot {bot.name} cannot take version {ready.version}: {refused}") from None
        previous = bot.freqai_version
        Bot.objects.filter(pk=bot.pk).update(freqai_version=ready.version)
        running = bot.is_active or bot.desired_state == DesiredState.RUNNING
        events.bot_model_reloaded_event(actor=actor, bot=bot, model_id=bot.freqai_model_id, from_version=previous,
                                        to_version=ready.version, restarted=running)  # fmt: skip
        restart = bot_command(actor=actor, bot=bot, command=Command.RESTART) if running else None
    return {"status": "model_reloaded", "bot_name": bot.name, "bot_id": bot.pk, "model_id": bot.freqai_model_id,
            "model_version": ready.version, "previous_version": previous, "reload_time": timezone.now(),
            "restart": restart}  # fmt: skip


def bot_delete(*, actor: Actor, bot: Bot) -> bool:
    """Delete now when stopped (True); a running bot is stopped first and deleted when it is (False)."""
    with transaction.atomic():
        bot = Bot.objects.select_for_update().get(pk=bot.pk)
        # A start already sent counts as running: its process may exist any moment now.
        if bot.is_active or bot.desired_state == DesiredState.RUNNING:
            Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.STOPPED, delete_requested=True)
            events.bot_delete_pending_event(actor=actor, bot=bot)
            pending_id = bot.pk
            _send_command(Command.STOP, build_bot_command(bot_id=pending_id, then_delete=True))
            return False
        bot_id = bot.pk
        _delete_now(bot)  # the instance keeps its other fields
        events.bot_deleted_event(
            actor=actor, bot_id=bot_id, bot_name=bot.name, strategy_name=bot.strategy_name, exchange=bot.exchange
        )
    return True


def _delete_now(bot: Bot) -> None:
    from bots import workspace

    bot_id = bot.pk
    bot.delete()
    transaction.on_commit(lambda: workspace.remove(bot_id))


# -- lifecycle: commands to the gateway -----------------------------------------------------------
def _command_problem(bot: Bot, command: Command) -> str | None:
    """Why the command would change nothing (or cannot work), or None."""
    if command is Command.KILL:
        return None  # an emergency stop is never refused: the row may lag behind the process
    active = bot.status in ACTIVE_STATUSES
    if bot.delete_requested:
        return f"Bot {bot.name} is being deleted."
    # A start of a bot still stopping is taken: its gateway starts it once the old process is gone.
    if command is Command.START and active and bot.desired_state == DesiredState.RUNNING:
        return f"Bot {bot.name} is already {bot.status}."
    if command.desired_state == DesiredState.STOPPED and not active and bot.desired_state == DesiredState.STOPPED:
        return f"Bot {bot.name} is already stopped."
    if command.desired_state == DesiredState.RUNNING:
        from strategies.library import strategy_file

        if strategy_file(bot.strategy_name, owner=bot.owner) is None:
            return f"Strategy {bot.strategy_name!r} is not in the strategy library; upload it first."
    return None


def _send_command(command: Command, payload: BotCommand | EmergencyStop) -> None:
    """In the caller's transaction, with the desired state it acts on: the outbox publishes it once both
    are committed, at once or (Redis away) as soon as Redis answers. The request never waits for Redis."""
    from streams.outbox import outbox_put

    outbox_put(TRADING_COMMANDS, type=command, payload=payload)


def bot_port_on_host(*, bot_id: int, port: int, host: str, port_range: tuple[int, int] | None = None) -> int:
    """The bot's API port once it is placed on ``host``: kept when it lies in the range that host's gateway
    registered (or ``port_range``, the gateway's own), else the lowest port of that range no bot holds (ports
    are one pool across hosts, so no two bots ever share one). In the caller's transaction."""
    from bots.models import Host

    first, last = port_range or (
        Host.objects.filter(name=host).values_list("api_port_first", "api_port_last").first() or (0, 0)
    )
    if not first or first <= port <= last:
        return port
    for _attempt in range(3):
        held = set(Bot.objects.filter(api_port__range=(first, last)).values_list("api_port", flat=True))
        free = next((candidate for candidate in range(first, last + 1) if candidate not in held), None)
        if free is None:
            raise UnavailableError(f"No free bot API port left in {host}'s range {first}-{last}.")
        try:
            with transaction.atomic():
                Bot.objects.filter(pk=bot_id).update(api_port=free)
            return free
        except IntegrityError:
            continue  # another placement took it meanwhile: pick again
    raise UnavailableError(f"Could not take a bot API port in {host}'s range {first}-{last}; try again.")


def place_bot() -> str:
    """The host a bot starting for the first time goes to: the live host with the most free slots (by
    name among equals); "" when no host is live yet, and then the first gateway to take it claims it.

    In the caller's transaction, which holds the hosts' rows until it commits: two first starts at once
    (two web workers) are placed one after the other, the second seeing the slot the first took.
    """
    from bots.models import Host
    from bots.selectors import host_states

    list(Host.objects.select_for_update().order_by("name").values_list("pk", flat=True))
    live = [state for state in host_states().values() if state.live]
    return min(live, key=lambda state: (-state.free_slots, state.name)).name if live else ""


def _host_answer(host: str) -> dict[str, Any]:
    """What a command's answer says of the bot's host: its name, and that the command waits for it when
    its gateway is not answering (the command stays queued for that host, for no other to take)."""
    from bots.selectors import host_states

    if not host:
        return {"host": ""}
    state = host_states().get(host)
    if state is not None and state.live:
        return {"host": host}
    return {"host": host, "waiting_for_host": True,
            "detail": f"Host {host}'s gateway is not answering; the command waits for it."}  # fmt: skip


def bot_command(*, actor: Actor, bot: Bot, command: Command) -> dict[str, Any]:
    """Record what the user wants, send the command to the bot's host, answer at once.

    A bot with no host yet is placed by its first start (``place_bot``), in the same transaction.
    ``bot`` needs only ``LIFECYCLE_FIELDS`` (see bots/selectors.py). Raises ConflictError when the
    command would change nothing or cannot work.
    """
    if command is Command.EMERGENCY_STOP:
        raise ValueError("an emergency stop goes through emergency_stop_all")
    problem = _command_problem(bot, command)
    if problem:
        raise ConflictError(problem)
    payload = build_bot_command(bot_id=bot.pk, requested_by=actor.name or getattr(actor.user, "username", ""))
    with transaction.atomic():
        host, placed = Bot.objects.filter(pk=bot.pk).values_list("host", flat=True).first() or "", ""
        # Only a bot with no process anywhere is placed (a row older than placement may have one elsewhere).
        if not host and command.desired_state == DesiredState.RUNNING and not bot.pid and not bot.is_active:
            # Only a bot still unplaced: a concurrent start (or a gateway's claim) that placed it wins.
            placed = place_bot()
            if placed and Bot.objects.filter(pk=bot.pk, host="").update(host=placed):
                bot_port_on_host(bot_id=bot.pk, port=bot.api_port, host=placed)
            else:
                placed = ""
            host = Bot.objects.filter(pk=bot.pk).values_list("host", flat=True).first() or ""
        Bot.objects.filter(pk=bot.pk).update(desired_state=command.desired_state)
        events.bot_command_event(actor=actor, bot=bot, command=command, placed_on=placed)
        # Published after commit: the gateway must see the new desired state when it acts.
        _send_command(command, payload)
    return {"status": command.answer, "bot_name": bot.name, "bot_id": bot.pk, **_host_answer(host)}


def bot_move(*, actor: Actor, bot: Bot, host: str) -> Bot:
    """Place a stopped bot on another registered host (superusers): its next start runs there.

    Its directory on the old host (its dry-run trades database, its logs) stays there; the trades
    Multibot collected stay with the bot.
    """
    if not host:
        raise InvalidInputError("host", "Name the host to move the bot to.")
    _check_host(host)
    with transaction.atomic():
        bot = Bot.objects.select_for_update().only(*LIFECYCLE_FIELDS).get(pk=bot.pk)
        if bot.is_active or bot.desired_state == DesiredState.RUNNING:
            raise ConflictError(f"Bot {bot.name} is {bot.status}; stop it before moving it.")
        if bot.delete_requested:
            raise ConflictError(f"Bot {bot.name} is being deleted.")
        if bot.host == host:
            raise ConflictError(f"Bot {bot.name} is on {host} already.")
        moved_from = bot.host
        Bot.objects.filter(pk=bot.pk).update(host=host)
        bot.api_port = bot_port_on_host(bot_id=bot.pk, port=bot.api_port, host=host)
        events.bot_moved_event(actor=actor, bot=bot, from_host=moved_from, to_host=host)
        bot.host = host
    return bot


def fleet_command(*, actor: Actor, bots: Iterable[Bot], command: Command) -> list[dict[str, Any]]:
    """The same command for many bots; each gets its own answer, and one refusal stops no other."""
    results = []
    for bot in bots:
        try:
            results.append(bot_command(actor=actor, bot=bot, command=command))
        except (ConflictError, UnavailableError) as exc:  # a full host's port range refuses only its bots
            results.append({"status": "refused", "bot_name": bot.name, "bot_id": bot.pk, "detail": exc.message})
    return results


def emergency_stop_all(*, actor: Actor, bots: QuerySet[Bot], force_exit: bool) -> dict[str, Any]:
    """Every given bot: stop entries, optionally force-exit trades, terminate, kill. Answers at once.

    Reads only columns every row can load (ids, names, states, pids, hosts): one row left broken by an
    older version can neither stop the others nor escape the stop itself.
    """
    command = Command.EMERGENCY_STOP
    rows = list(bots.order_by("id").values_list("id", "name", "status", "pid", "host"))
    ids = [bot_id for bot_id, *_ in rows]
    with transaction.atomic():
        Bot.objects.filter(pk__in=ids).update(desired_state=command.desired_state)
        events.emergency_stop_all_event(actor=actor, bot_ids=ids, force_exit=force_exit)
        _send_command(command, build_emergency_stop(bot_ids=ids, force_exit=force_exit))
    outcome = [{"bot_id": bot_id, "bot_name": name, "status": command.answer, "was": status, "pid": pid,
                "host": host} for bot_id, name, status, pid, host in rows]  # fmt: skip
    return {"bot_ids": ids, "force_exit": force_exit, "bots": outcome, "total": len(outcome),
            **_emergency_hosts(host for *_, host in rows)}  # fmt: skip


def _emergency_hosts(hosts: Iterable[str]) -> dict[str, Any]:
    """The hosts an emergency stop goes to, each answering or not: a host whose gateway has not beaten
    within GATEWAY["host_down_after_seconds"] is named, for its bots stop only when it returns."""
    from bots.selectors import host_states

    states = host_states()
    named = sorted({host for host in hosts if host})
    silent = [host for host in named if host not in states or not states[host].live]
    return {"hosts": [{"host": host, "answering": host not in silent} for host in named],
            "hosts_not_answering": silent}  # fmt: skip


# -- lifecycle: the gateway's reports -------------------------------------------------------------
def bot_status_apply(*, report: BotStatusReport) -> bool:
    """Apply one gateway status report; a report older than the one applied is ignored."""
    from datetime import UTC, datetime

    started = report["started_at"]
    fields: dict[str, Any] = {
        "status": report["status"],
        "status_at": report["at"],
        "pid": report["pid"],
        "pid_create_time": report["pid_create_time"],
        "restart_count": report["restart_count"],
        "started_at": datetime.fromtimestamp(started, UTC) if started else None,
    }
    if report["status"] == BotStatus.ERROR:
        fields["desired_state"] = DesiredState.STOPPED  # an errored bot waits for the user
    with transaction.atomic():
        # One read, under a lock: which report is newer, the secrets to mask, a pending delete. Only
        # columns every row can load: a bot whose row is broken elsewhere still gets its reports.
        loaded = (*LIFECYCLE_FIELDS, "status_at", "jwt_secret_key", "ws_token", "exchange_key", "exchange_secret")
        bot = Bot.objects.select_for_update().filter(pk=report["bot_id"]).only(*loaded).first()
        if bot is None or bot.status_at >= report["at"]:
            return False
        fields["status_detail"] = bot.mask_secrets(report["detail"])[:4000]
        if report["host"] and not bot.host:
            fields["host"] = report["host"]  # a gateway's claim of an unplaced bot (placed bots keep theirs)
        Bot.objects.filter(pk=bot.pk).update(**fields)
        if bot.delete_requested and report["status"] in (BotStatus.STOPPED, BotStatus.ERROR):
            _delete_now(bot)
            events.bot_deleted_after_stop_event(actor=Actor.system(), bot_id=report["bot_id"], bot_name=bot.name)
    return True


def bot_snapshot_apply(*, snapshot: GatewayHeartbeat) -> list[int]:
    """Make the records of the snapshot's host agree with it; returns the bots whose status it corrected.

    The snapshot is complete (bots/commands.py): a bot it lists gets the status and pid listed; a bot
    recorded active on that host that it does not list has no process there and is stopped. Each
    correction is an ordinary status report made at the snapshot's moment, so a report made after it
    (already applied, or arriving later) wins, and one made before it loses. Then every listed bot's
    two heartbeats: the gateway saw it now, and its API last answered when the beat says.
    """
    from datetime import UTC, datetime

    at, host = snapshot["at"], snapshot["host"]
    listed = {beat["bot_id"]: beat for beat in snapshot["bots"]}
    # An older gateway's heartbeat lists the processes it saw, not all it holds: nothing to correct by.
    rows = Bot.objects.none()
    if snapshot.get("complete"):
        rows = Bot.objects.filter(Q(pk__in=listed) | Q(host=host, status__in=ACTIVE_STATUSES))
    rows = rows.values_list("id", "status", "pid", "status_at", "restart_count", "status_detail")
    corrections = []
    for bot_id, status, pid, status_at, restart_count, detail in rows:
        if status_at >= at:
            continue  # its record is newer than the snapshot
        beat = listed.get(bot_id)
        if beat is None:
            corrections.append(build_bot_status(
                bot_id=bot_id, status=BotStatus.STOPPED, at=at, host=host, restart_count=restart_count,
                detail=f"no process on {host}: its gateway's snapshot does not list it (was {status})",
            ))  # fmt: skip
        elif (status, pid) != (beat["status"], beat["pid"]):
            started = beat.get("started_at")
            corrections.append(build_bot_status(
                bot_id=bot_id, status=beat["status"], at=at, host=host, pid=beat["pid"],
                pid_create_time=beat.get("pid_create_time"), started_at=started,
                restart_count=beat.get("restart_count", restart_count),
                detail=beat.get("detail") or (detail if status == beat["status"]
                                              else f"{beat['status']}, as its gateway's snapshot found it"),
            ))  # fmt: skip
    corrected = [report["bot_id"] for report in corrections if bot_status_apply(report=report)]
    # One statement each; a bot deleted meanwhile is simply not updated.
    seen = datetime.fromtimestamp(at, UTC)
    Bot.objects.filter(pk__in=[bot_id for bot_id, beat in listed.items() if beat["pid"] is not None]).update(
        gateway_seen_at=seen
    )
    answered = [Bot(pk=bot_id, api_answered_at=datetime.fromtimestamp(beat["answered_at"], UTC))
                for bot_id, beat in listed.items() if "answered_at" in beat]  # fmt: skip
    Bot.objects.bulk_update(answered, ["api_answered_at"], batch_size=500)
    return corrected


def host_heartbeat_apply(*, host: str, at: float, capacity: HostCapacity) -> None:
    """Register the heartbeat's host, or bring its capacity and last sight up to date (never backwards)."""
    from datetime import UTC, datetime

    from bots.models import Host

    seen = datetime.fromtimestamp(at, UTC)
    started = datetime.fromtimestamp(capacity["gateway_started_at"], UTC) if capacity["gateway_started_at"] else None
    fields = {"bot_slots": capacity["bot_slots"], "memory_total_mb": capacity["memory_total_mb"],
              "memory_available_mb": capacity["memory_available_mb"], "cpus": capacity["cpus"],
              "api_port_first": capacity.get("api_port_first", 0), "api_port_last": capacity.get("api_port_last", 0),
              "gateway_started_at": started, "last_seen_at": seen}  # fmt: skip
    with transaction.atomic():
        row = Host.objects.select_for_update().filter(name=host).first()
        if row is None:
            try:
                with transaction.atomic():
                    Host.objects.create(name=host, **fields)
                return
            except IntegrityError:  # another listener registered it meanwhile
                row = Host.objects.select_for_update().get(name=host)
        if row.last_seen_at < seen:
            Host.objects.filter(pk=row.pk).update(**fields)
