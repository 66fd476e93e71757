"""/ws on a real uvicorn server with real clients (the ``websockets`` library), events from a real ``run_listeners``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect
from websockets.uri import parse_uri

from bots.commands import Report, build_bot_status
from multibot.heartbeats import heartbeat_list
from realtime import broadcast
from streams.bus import publish
from streams.catalog import TRADING_STATUS
from tests import factories
from tests.support.processes import ROOT, database_url, server_env, uvicorn_server, wait_for

pytestmark = pytest.mark.slow


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


def read_type(ws, type: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] == type:
            return message


@pytest.fixture
def listeners(committed_db: None) -> Iterator[subprocess.Popen[bytes]]:
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    process = subprocess.Popen([sys.executable, "manage.py", "run_listeners", "--consumer", "listeners-ws"], cwd=ROOT,
                               env=env)  # fmt: skip
    try:
        wait_for(lambda: heartbeat_list(component="listeners"), 30, "a listeners heartbeat")
        yield process
    finally:
        process.terminate()
        process.wait(30)


def test_a_status_report_applied_by_the_listeners_reaches_the_owners_browser_socket(listeners, user, other_user):
    # given: a bot of the user's, its owner's socket and another user's, through the real server
    bot = factories.make_bot(owner=user)
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    with uvicorn_server(env) as base:
        origin = f"http://{urlsplit(base).netloc}"
        with connect(ws_url(base), subprotocols=["multibot", f"bearer.{factories.access_token_for(user)}"],
                     origin=origin) as mine, \
             connect(ws_url(base), subprotocols=["multibot", f"bearer.{factories.access_token_for(other_user)}"]
                     ) as theirs:  # fmt: skip
            assert mine.subprotocol == "multibot"
            read_type(mine, "welcome"), read_type(theirs, "welcome")

            # when: the gateway reports the bot running
            report = build_bot_status(bot_id=bot.pk, status="running", at=time.time(), host="h1", pid=4242)
            publish(TRADING_STATUS, type=Report.BOT_STATUS, payload=report, producer="trading_gateway")

            # then: the owner hears it from the listeners, the other user does not
            update = read_type(mine, "bot_status_update")
            assert update["data"]["bot_id"] == bot.pk
            assert (update["data"]["status"], update["data"]["pid"]) == ("running", 4242)
            theirs.send(json.dumps({"type": "ping"}))
            assert json.loads(theirs.recv(timeout=10))["type"] == "pong"  # nothing queued before the pong


def test_the_real_server_refuses_a_foreign_origin_and_a_bad_token_with_403(committed_db, user):
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    token = factories.access_token_for(user)
    with uvicorn_server(env) as base:
        with pytest.raises(InvalidStatus) as foreign:
            connect(ws_url(base), subprotocols=["multibot", f"bearer.{token}"], origin="http://evil.example")
        with pytest.raises(InvalidStatus) as bad:
            connect(ws_url(base), subprotocols=["multibot", "bearer.not-a-token"])
        with connect(ws_url(base), subprotocols=["multibot", f"bearer.{token}"]) as accepted:
            assert read_type(accepted, "welcome")["data"]["user"]["id"] == user.pk

    assert foreign.value.response.status_code == 403
    assert bad.value.response.status_code == 403


class StalledClient:
    """A WebSocket client over a plain socket (websockets' sans-I/O protocol): it reads only when told to,
    so once the kernel's small buffers are full the server's writes to it wait, as with a stalled browser."""

    def __init__(self, url: str, token: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), subprotocols=["multibot", f"bearer.{token}"])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        self.sock.connect(("127.0.0.1", urlsplit(url).port))
        self.sock.settimeout(20)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.texts: list[str] = []
        while not self.texts:  # the handshake's answer, then the welcome
            self._read_once()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read_once(self) -> bool:
        data = self.sock.recv(65536)
        self.protocol.receive_data(data) if data else self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.texts.append(event.data.decode())
        self._flush()  # the answer to a close frame
        return bool(data)

    def read_until_closed(self) -> int | None:
        """Everything the server sent, up to its close; the close code (None: no close frame came)."""
        while self.protocol.close_rcvd is None and self._read_once():
            pass
        self.sock.close()
        return self.protocol.close_rcvd.code if self.protocol.close_rcvd else None


def _uvicorn_process(base: str) -> psutil.Process:
    port = str(urlsplit(base).port)
    return next(child for child in psutil.Process().children()
                if "uvicorn" in " ".join(child.cmdline()) and port in child.cmdline())  # fmt: skip


def test_a_client_that_stops_reading_is_closed_with_4008_and_the_server_does_not_keep_its_backlog(committed_db, user):
    # given: a server with a small per-socket queue, and a client that reads its welcome and then stops
    # 64 MB of events for it, at a pace the server keeps up with (what is measured is the client's slowness).
    blob, count = "x" * 16 * 1024, 4000
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(), MULTIBOT_WS_QUEUE_SIZE="20")
    with uvicorn_server(env) as base:
        server = _uvicorn_process(base)
        client = StalledClient(ws_url(base), factories.access_token_for(user))
        assert json.loads(client.texts[0])["type"] == "welcome"
        before = server.memory_info().rss

        # when
        for seq in range(count):
            broadcast("system_metrics", {"seq": seq, "blob": blob})
            time.sleep(0.001)
        time.sleep(1.0)
        grown = server.memory_info().rss - before

        # then: the client, reading at last, finds part of the events and the server's 4008
        code = client.read_until_closed()
        received = len(client.texts) - 1
    assert code == 4008
    assert received < count / 2
    # Kept, the backlog alone would be 64 MB.
    assert grown < 24 * 1024 * 1024, f"the server grew by {grown / 2**20:.1f} MB"
