"""Login, token refresh with rotation, logout; with per-account lockout and audit rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import update_last_login
from django.db import transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from audit.models import AuditLog
from audit.services import Actor, audit_record
from multibot.errors import ForbiddenError, TooManyAttemptsError, UnauthorizedError
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
    def __init__(self, *, wait: int) -> None:
        super().__init__("This account is locked after too many failed logins; try again later.", retry_after=wait)


def _issue(user: Any) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    return TokenPair(
        access_token=str(refresh.access_token),
        refresh_token=str(refresh),
        expires_in=int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    )


def _failures_key(username: str) -> str:
    return redis_key("login-failures", username.lower())


def _locked_for(username: str) -> int:
    """Seconds the account stays locked, 0 when it is not."""
    client = redis_client()
    failures = int(client.get(_failures_key(username)) or 0)
    if failures < settings.LOGIN_LOCKOUT["max_failures"]:
        return 0
    return max(1, int(client.ttl(_failures_key(username))))


def _count_failure(username: str) -> None:
    pipe = redis_client().pipeline()
    pipe.incr(_failures_key(username))
    pipe.expire(_failures_key(username), settings.LOGIN_LOCKOUT["window_seconds"])
    pipe.execute()


def login(*, actor: Actor, username: str, password: str) -> tuple[Any, TokenPair]:
    locked = _locked_for(username)
    known = User.objects.filter(username=username).first()
    if locked:
        audit_record(actor=actor, action="login", status=AuditLog.Status.DENIED, user=known,
                     details={"username": username, "reason": "account_locked"})  # fmt: skip
        raise AccountLocked(wait=locked)
    user = authenticate(username=username, password=password)
    if user is None:
        _count_failure(username)
        reason = (
            "inactive_user"
            if known is not None and not known.is_active and known.check_password(password)
            else "bad_credentials"
        )
        audit_record(actor=actor, action="login", status=AuditLog.Status.FAILURE, user=known,
                     details={"username": username, "reason": reason})  # fmt: skip
        raise UnauthorizedError("Incorrect username or password")
    redis_client().delete(_failures_key(username))
    with transaction.atomic():
        tokens = _issue(user)
        update_last_login(None, user)
        audit_record(actor=actor, action="login", user=user, details={"username": username})
    return user, tokens


def check_credentials(*, actor: Actor, username: str, password: str) -> Any:
    """A username and password sent with a request (HTTP Basic): the user, under login's lockout.

    No tokens are issued. A failure counts towards the lockout and is audited like a failed login
    (``via: http_basic``); a success is not audited, since it happens on every request.
    """
    locked = _locked_for(username)
    if locked:
        raise AccountLocked(wait=locked)
    user = authenticate(username=username, password=password)
    if user is None:
        _count_failure(username)
        known = User.objects.filter(username=username).first()
        inactive = known is not None and not known.is_active and known.check_password(password)
        audit_record(actor=actor, action="login", status=AuditLog.Status.FAILURE, user=known,
                     details={"username": username, "reason": "inactive_user" if inactive else "bad_credentials",
                              "via": "http_basic"})  # fmt: skip
        raise UnauthorizedError("Incorrect username or password")
    return user


def revoke_all_sessions(user_id: Any) -> int:
    outstanding = OutstandingToken.objects.filter(user_id=user_id, blacklistedtoken__isnull=True)
    tokens = list(outstanding)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in tokens], ignore_conflicts=True)
    return len(tokens)


def _was_rotated(*, user: Any, jti: str) -> bool:
    # The audit row of each rotation names the retired token: durable, and no extra state to keep.
    return AuditLog.objects.filter(
        user=user, action="token_refresh", status=AuditLog.Status.SUCCESS, details__rotated_jti=jti
    ).exists()


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
            if not _was_rotated(user=user, jti=jti):
                # Blacklisted by a logout or a deactivation: refused, but not a sign of theft.
                raise UnauthorizedError("Refresh token has been revoked")
            revoked = revoke_all_sessions(user_id)
            audit_record(actor=actor, action="token_refresh", status=AuditLog.Status.DENIED, user=user,
                         details={"reason": "reused_refresh_token", "sessions_revoked": revoked})  # fmt: skip
            reuse_detected = True
        else:
            reuse_detected = False
            if not user.is_active:
                raise UnauthorizedError("User is inactive")
            BlacklistedToken.objects.create(token=outstanding)
            tokens = _issue(user)
            audit_record(actor=actor, action="token_refresh", user=user, details={"rotated_jti": jti})
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
        audit_record(actor=actor, action="logout", details={"jti": token.get("jti")})
