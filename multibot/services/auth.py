"""Login, token refresh with rotation, logout; with a lockout per account and address, and audit rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import update_last_login
from django.db import transaction
from django.db.models import F
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from audit import events
from audit.selectors import token_was_rotated
from audit.services import Actor
from multibot.errors import ForbiddenError, TooManyAttemptsError, UnauthorizedError, UnavailableError
from multibot.redis_client import redis_client, redis_key

User = get_user_model()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


class AccountLocked(TooManyAttemptsError):  # noqa: N818 - the name callers know
    def __init__(
        self, *, wait: int, detail: str = "This account is locked after too many failed logins; try again later."
    ) -> None:
        super().__init__(detail, retry_after=wait)


# The account's token version (User.token_version) at issue; multibot.authentication checks it.
TOKEN_VERSION_CLAIM = "token_version"


def _issue(user: Any) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    refresh[TOKEN_VERSION_CLAIM] = user.token_version  # copied into the access token below
    return TokenPair(
        access_token=str(refresh.access_token),
        refresh_token=str(refresh),
        expires_in=int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    )


logger = logging.getLogger(__name__)


def _guard_down() -> UnavailableError:
    """What a login answers while the failure counts (Redis) cannot be read or written."""
    return UnavailableError("Logins are paused for a moment: the guard against password guessing cannot be "
                            "reached. Try again in a few seconds; signed-in sessions keep working.")  # fmt: skip


@dataclass(frozen=True)
class _Lockout:
    """The lockout counters of one account as seen from one address (see settings.LOGIN_LOCKOUT).

    Failures count per (account, address) and per account. Too many from one address lock that
    address out of that account, and only it. Too many for the account (a guess spread over many
    addresses) lock it for every address it has not recently logged in from: an outsider can slow
    the owner's new devices down, never lock the owner out of an address the owner uses.
    """

    pair: str
    account: str
    known: str

    @classmethod
    def of(cls, *, username: str, address: str | None) -> _Lockout:
        account, where = username.lower(), address or "unknown"
        # The address first: it is a canonical IP, so no username can make two pairs' keys meet.
        return cls(
            pair=redis_key("login-failures", "from", where, account),
            account=redis_key("login-failures", "account", account),
            known=redis_key("login-known", where, account),
        )

    def refusal(self) -> AccountLocked | None:
        """The lock in force for this account and address, if any.

        The counts live in Redis: without them a password check would be an unlimited guess, so while
        Redis does not answer, logins are refused with a 503 that says so (tokens already issued still
        work). The patient client, not the request one: a login is not refused for a 100 ms hiccup.
        """
        rules = settings.LOGIN_LOCKOUT
        try:
            pipe = redis_client().pipeline(transaction=False)
            pipe.get(self.pair).ttl(self.pair).get(self.account).ttl(self.account).exists(self.known)
            pair_failures, pair_ttl, account_failures, account_ttl, known = pipe.execute()
        except redis.RedisError as exc:
            raise _guard_down() from exc
        if int(pair_failures or 0) >= rules["max_failures"]:
            return AccountLocked(
                wait=max(1, pair_ttl),
                detail="This account is locked for your address after too many failed logins; try again later.",
            )
        if int(account_failures or 0) >= rules["max_account_failures"] and not known:
            return AccountLocked(
                wait=max(1, account_ttl),
                detail="This account is locked for new addresses after too many failed logins; try again later.",
            )
        return None

    def count_failure(self) -> None:
        window = settings.LOGIN_LOCKOUT["window_seconds"]
        try:
            pipe = redis_client().pipeline()
            pipe.incr(self.pair).expire(self.pair, window).incr(self.account).expire(self.account, window)
            pipe.execute()
        except redis.RedisError as exc:
            raise _guard_down() from exc  # an uncounted failure must not look like an ordinary one

    def count_success(self) -> None:
        # The account-wide count stays: the owner's success must not reopen a spread-out guess.
        try:
            pipe = redis_client().pipeline()
            pipe.delete(self.pair).set(self.known, 1, ex=settings.LOGIN_LOCKOUT["known_address_days"] * 86400)
            pipe.execute()
        except redis.RedisError:
            logger.warning("a successful login's address was not remembered: Redis does not answer")


def login(*, actor: Actor, username: str, password: str) -> tuple[Any, TokenPair]:
    lockout = _Lockout.of(username=username, address=actor.ip_address)
    locked = lockout.refusal()
    known = User.objects.filter(username=username).first()
    if locked:
        events.login_failed_event(actor=actor, username=username, reason="account_locked", account=known)
        raise locked
    user = authenticate(username=username, password=password)
    if user is None:
        lockout.count_failure()
        reason = (
            "inactive_user"
            if known is not None and not known.is_active and known.check_password(password)
            else "bad_credentials"
        )
        events.login_failed_event(actor=actor, username=username, reason=reason, account=known)
        raise UnauthorizedError("Incorrect username or password")
    lockout.count_success()
    with transaction.atomic():
        tokens = _issue(user)
        update_last_login(None, user)
        events.login_succeeded_event(actor=actor, user=user)
    return user, tokens


def check_credentials(*, actor: Actor, username: str, password: str, via: str = "http_basic") -> Any:
    """A username and password sent with a request (HTTP Basic): the user, under login's lockout.

    No tokens are issued. A failure counts towards the lockout and is audited like a failed login
    (``via``: how they came); a success is not audited here, since it happens on every request.
    """
    lockout = _Lockout.of(username=username, address=actor.ip_address)
    locked = lockout.refusal()
    if locked:
        raise locked
    user = authenticate(username=username, password=password)
    if user is None:
        lockout.count_failure()
        known = User.objects.filter(username=username).first()
        inactive = known is not None and not known.is_active and known.check_password(password)
        events.login_failed_event(actor=actor, username=username, account=known, via=via,
                                  reason="inactive_user" if inactive else "bad_credentials")  # fmt: skip
        raise UnauthorizedError("Incorrect username or password")
    lockout.count_success()
    return user


def revoke_all_sessions(user_id: Any) -> int:
    """End every session of the account: its refresh tokens are blacklisted and, by raising its
    token version, its access tokens refused. Returns how many refresh tokens were still live."""
    User.objects.filter(pk=user_id).update(token_version=F("token_version") + 1)
    outstanding = OutstandingToken.objects.filter(user_id=user_id, blacklistedtoken__isnull=True)
    tokens = list(outstanding)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in tokens], ignore_conflicts=True)
    return len(tokens)


def refresh(*, actor: Actor, raw_token: str) -> TokenPair:
    """Rotate: the presented refresh token is blacklisted and a new pair issued.

    Presenting an already-rotated token means it was copied: every session of that user is revoked.
    A token revoked by logout is simply refused.
    """
    try:
        # Signature and expiry only: a blacklisted token must reach the reuse check below.
        token = UntypedToken(raw_token)
    except TokenError as exc:
        raise UnauthorizedError("Refresh token is invalid or expired") from exc
    if token.get("token_type") != "refresh":
        raise UnauthorizedError("Refresh token is invalid or expired")
    jti, user_id = token.get("jti"), token.get("user_id")
    with transaction.atomic():
        # Lock the token row so two concurrent refreshes with one token cannot both succeed.
        outstanding = OutstandingToken.objects.select_for_update().filter(jti=jti).first()
        user = User.objects.filter(pk=user_id).first()
        if outstanding is None or user is None:
            raise UnauthorizedError("Refresh token is invalid or expired")
        if BlacklistedToken.objects.filter(token=outstanding).exists():
            # The audit row of each rotation names the retired token: durable, and no extra state to keep.
            if not token_was_rotated(user=user, jti=jti):
                # Blacklisted by a logout or a deactivation: refused, but not a sign of theft.
                raise UnauthorizedError("Refresh token has been revoked")
            revoked = revoke_all_sessions(user_id)
            events.refresh_token_reused_event(actor=actor, user=user, sessions_revoked=revoked)
            reuse_detected = True
        else:
            reuse_detected = False
            if not user.is_active:
                raise UnauthorizedError("User is inactive")
            if token.get(TOKEN_VERSION_CLAIM, 0) != user.token_version:
                raise UnauthorizedError("Refresh token has been revoked")
            BlacklistedToken.objects.create(token=outstanding)
            tokens = _issue(user)
            events.token_refreshed_event(actor=actor, user=user, rotated_jti=jti)
    if reuse_detected:
        raise UnauthorizedError("Refresh token was already used; all sessions of this account were signed out")
    return tokens


def logout(*, actor: Actor, user: Any, raw_token: str) -> None:
    try:
        token = RefreshToken(raw_token)
    except TokenError as exc:
        raise UnauthorizedError("Refresh token is invalid or expired") from exc
    if str(token.get("user_id")) != str(user.pk):
        raise ForbiddenError("That refresh token belongs to another account")
    with transaction.atomic():
        token.blacklist()
        events.logged_out_event(actor=actor, jti=token.get("jti"))
