"""channels' WebsocketCommunicator, and a WebSocket client over a real socket for end-to-end tests.

channels.testing's package ``__init__`` imports daphne for its live-server test case, and we serve
with uvicorn (daphne is not installed): the package is entered without running that ``__init__``, so
its communicator modules (which need only asgiref) import as they are.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import channels

if "channels.testing" not in sys.modules:
    _package = types.ModuleType("channels.testing")
    _package.__path__ = [str(Path(channels.__file__).parent / "testing")]
    sys.modules["channels.testing"] = _package

from channels.testing.websocket import WebsocketCommunicator  # after the package above

__all__ = ["WebsocketCommunicator"]
