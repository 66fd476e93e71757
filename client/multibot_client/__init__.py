"""Python client of the Multibot management server: ``Client`` (blocking) and ``AsyncClient`` (asyncio)."""

from multibot_client.aio import AsyncClient
from multibot_client.client import DEFAULT_URL, Client
from multibot_client.endpoints import Call
from multibot_client.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    Conflict,
    FieldError,
    MultibotError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServerUnreachable,
    Unavailable,
    ValidationError,
)
from multibot_client.events import EVENT_TYPES, AsyncEventStream, Event, EventStream, EventStreamError
from multibot_client.tokens import MemoryTokenStore, Tokens, TokenStore
from multibot_client.version import __version__

__all__ = [
    "DEFAULT_URL", "EVENT_TYPES", "ApiError", "AsyncClient", "AsyncEventStream", "AuthenticationError", "BadRequest",
    "Call", "Client", "Conflict", "Event", "EventStream", "EventStreamError", "FieldError", "MemoryTokenStore",
    "MultibotError", "NotFound", "PayloadTooLarge", "PermissionDenied", "RateLimited", "ServerError",
    "ServerUnreachable", "TokenStore", "Tokens", "Unavailable", "ValidationError", "__version__",
]  # fmt: skip
