"""A real browser (Debian's chromium driven by Playwright) against a real uvicorn, with screenshots kept.

Screenshots are written under the test's tmp_path and copied to ``test-artifacts/dashboard/<test>/`` at
the repository root, where CI keeps them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, database_url, server_env, uvicorn_server

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that reaches the internet (updates, sync, field trials, QUIC probes).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
TIMEOUT_MS = 15_000


# Per module, not per session: Playwright's sync API runs an asyncio loop in this thread while it is
# open, and the rest of the suite (asyncio.run, Django's async-safety check) needs that loop gone.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread; Django then refuses ORM calls
    # from it as "async" unless told that this thread is in fact synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def web(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """The ASGI app (HTTP and /ws) in a real uvicorn on the test database; its base URL."""
    with django_db_blocker.unblock():
        env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    with uvicorn_server(env) as base:
        yield base


@pytest.fixture
def shot(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Path]:
    """``shot(page, "name")``: a full-page screenshot in tmp_path, copied to test-artifacts/dashboard/<test>/."""
    kept = ARTIFACTS / request.node.name.replace("/", "_")
    shutil.rmtree(kept, ignore_errors=True)
    counter = iter(range(1, 100))

    def take(page: Any, name: str) -> Path:
        path = tmp_path / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, kept / path.name)
        return path

    return take


def new_page(browser: Any, base: str, **context: Any) -> Any:
    """A page in a fresh context (its own sessionStorage: one user per context), console errors recorded."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.goto(base + "/")
    return page


def log_in(page: Any, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("header.top")
