"""The must-show: a real system (uvicorn with /ws, listeners, gateway, replay exchange) driven from a browser.

The owner starts a bot from the fleet table and sees it run, then trade, without a reload, and stops the
fleet with the emergency button; another user, logged in meanwhile in a second browser context, sees none
of it. Screenshots of each step go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import pytest

from tests.bots import test_trade_collection as trade_collection
from tests.dashboard.conftest import log_in, new_page
from tests.factories import PASSWORD, make_bot, make_user

# The trade collection tests' system: the replay exchange, and the gateway and listeners on the test database.
replay_url, fleet, bots_started = trade_collection.replay_url, trade_collection.fleet, trade_collection.bots_started

# The page in a browser: its data come from the API, tested on both databases.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only, pytest.mark.django_db(transaction=True)]

RUNNING_WITHIN_MS = 120_000
TRADE_WITHIN_MS = 120_000


def _socket_open(page) -> None:
    page.locator("[data-socket=open]").wait_for()


def test_a_user_runs_trades_and_emergency_stops_a_bot_live_and_another_user_sees_none_of_it(
    browser, web, fleet, bots_started, shot
):
    # given: the owner's bot (its entries fill at once on the replay market), and another user
    owner, other = make_user(), make_user()
    bot = make_bot(owner=owner, name="filler", strategy_name="FillAtOnce", timeframe="1m",
                   pair_whitelist=["BTC/USDT"], max_open_trades=1)  # fmt: skip
    bots_started.append(bot)
    page = new_page(browser, web, viewport={"width": 1360, "height": 900})
    log_in(page, owner.username, PASSWORD)
    theirs = new_page(browser, web, viewport={"width": 1360, "height": 900})
    log_in(theirs, other.username, PASSWORD)
    _socket_open(page)
    _socket_open(theirs)
    row = page.locator("tr[data-bot-name=filler]")
    assert row.locator("[data-status]").inner_text() == "stopped"
    shot(page, "fleet-before-start")

    # when: started from its row, behind a confirmation
    row.get_by_role("button", name="Start", exact=True).click()
    dialog = page.get_by_role("dialog")
    assert "filler" in dialog.inner_text()
    shot(page, "start-confirmation")
    dialog.locator("[data-confirm]").click()
    dialog.get_by_text("start_command_sent").wait_for()
    dialog.locator("[data-confirm]").click()  # close the outcome

    # then: it runs, with its pid, and trades, all pushed over the socket (no reload)
    row.locator("[data-status=running]").wait_for(timeout=RUNNING_WITHIN_MS)
    assert row.locator(".pid").inner_text().isdigit()
    shot(page, "running")
    entry = page.locator("#trade-feed li[data-trade-event]").first
    entry.wait_for(timeout=TRADE_WITHIN_MS)
    assert "filler" in entry.inner_text() and "BTC/USDT" in entry.inner_text()
    shot(page, "trade-notification")

    # when: the emergency button, whose confirmation says what it will do
    page.get_by_role("button", name="Emergency stop all").click()
    emergency = page.get_by_role("dialog")
    summary = emergency.locator(".emergency-summary").inner_text()
    assert "1 bot" in summary and "1 running (filler)" in summary
    assert "its open trades stay open" in emergency.inner_text()
    emergency.locator("input[name=force_exit]").check()
    assert "force-exits its open trades at market" in emergency.inner_text()
    shot(page, "emergency-confirmation")
    emergency.locator("[data-confirm]").click()

    # then: the outcome per bot, and the bot goes down live
    outcome = emergency.locator(f"tr[data-outcome-bot='{bot.pk}']")
    outcome.wait_for()
    assert "emergency_stop_command_sent" in outcome.inner_text()
    assert "force-exited" in emergency.locator(".emergency-outcome").inner_text()
    outcome.locator("[data-status=stopped]").last.wait_for(timeout=30_000)
    shot(page, "emergency-outcome")
    emergency.locator("[data-confirm]").click()
    row.locator("[data-status=stopped]").wait_for()
    shot(page, "fleet-after-emergency")

    # and the other user, connected all along, got none of those events
    _socket_open(theirs)
    assert theirs.locator("tr[data-bot-id]").count() == 0
    assert theirs.locator("#trade-feed li[data-trade-event]").count() == 0
    assert theirs.locator("#open-trades tr[data-trade-id]").count() == 0
    shot(theirs, "other-user")
    assert not [e for e in page.errors + theirs.errors if "WebSocket" not in e], page.errors + theirs.errors
