"""HTTP Basic with a Multibot user's password, for clients that only speak Basic (freqtrade-client).

Only views that list it accept it (the freqtrade pass-through); everything else takes JWT alone.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication
from rest_framework.request import Request

from audit.services import Actor
from multibot.errors import TooManyAttemptsError, UnauthorizedError, as_api_exception
from multibot.services import auth


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's Basic parsing; the password check is login's, with its lockout (a guess per request is still a guess)."""

    def authenticate_credentials(self, userid: str, password: str, request: Request | None = None) -> tuple[Any, None]:
        # The Django request: asking the DRF request for its user here would re-enter authentication.
        django_request = getattr(request, "_request", request)
        actor = Actor.from_request(django_request) if django_request is not None else Actor(user=None, ip_address=None)
        try:
            return auth.check_credentials(actor=actor, username=userid, password=password), None
        except (UnauthorizedError, TooManyAttemptsError) as exc:
            raise as_api_exception(exc) from exc
