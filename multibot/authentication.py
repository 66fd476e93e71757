"""How API requests authenticate: JWT everywhere, HTTP Basic where a view lists it.

JWT is simplejwt's, plus the account's token version: ending an account's sessions (a refresh
token reused, the account deactivated) raises the version, and every token issued before stops
working at once, access tokens included. HTTP Basic, with a Multibot user's password, is for
clients that only speak Basic (freqtrade-client); only the freqtrade pass-through lists it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt import authentication as simplejwt
from rest_framework_simplejwt.tokens import Token

from audit.services import Actor
from multibot.errors import TooManyAttemptsError, UnauthorizedError, as_api_exception
from multibot.services import auth


class JWTAuthentication(simplejwt.JWTAuthentication):
    """simplejwt's Bearer check, refusing tokens from before the account's sessions were ended."""

    def get_user(self, validated_token: Token) -> Any:
        user = super().get_user(validated_token)
        # Tokens issued before versions existed carry none: they belong to version 0.
        if validated_token.get(auth.TOKEN_VERSION_CLAIM, 0) != user.token_version:
            raise AuthenticationFailed("Token has been revoked; log in again", code="token_revoked")
        return user


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI description of the class above: simplejwt's Bearer scheme."""

    target_class = "multibot.authentication.JWTAuthentication"


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's Basic parsing; the password check is login's, with its lockout (a guess per request is still a guess)."""

    def authenticate_credentials(self, userid: str, password: str, request: Request | None = None) -> tuple[Any, None]:
        # The Django request: asking the DRF request for its user here would re-enter authentication.
        django_request = getattr(request, "_request", request)
        actor = Actor.from_request(django_request) if django_request is not None else Actor(user=None, ip_address=None)
        # What a refused password's audit row says the credentials came with: the view may say (a bot's token/login).
        view = (getattr(request, "parser_context", None) or {}).get("view")
        via = getattr(view, "basic_auth_via", "http_basic")
        try:
            return auth.check_credentials(actor=actor, username=userid, password=password, via=via), None
        except (UnauthorizedError, TooManyAttemptsError) as exc:
            raise as_api_exception(exc) from exc
