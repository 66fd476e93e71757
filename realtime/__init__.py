"""Live updates over the WebSocket ``/ws``: sync code calls ``realtime.broadcast(type, data, owner_id=...)``."""

from __future__ import annotations

from realtime.broadcast import broadcast

__all__ = ["broadcast"]
