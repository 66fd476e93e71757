"""The dashboard in a real browser on a real server (web only): login, the new-bot form's errors, a phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from strategies.services import strategy_install_builtins
from tests.analytics.test_apis import collect, ft_trade
from tests.dashboard.conftest import log_in, new_page
from tests.factories import PASSWORD, make_bot, make_user, store_replay_markets

# The page in a browser: its data come from the API, tested on both databases.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only, pytest.mark.django_db(transaction=True)]


def test_the_page_is_served_with_its_own_files_only(web):
    # when
    page = httpx.get(f"{web}/", timeout=10)
    script = httpx.get(f"{web}/static/dashboard/js/app.js", timeout=10)
    vendor = httpx.get(f"{web}/static/dashboard/vendor/htm/standalone.module.js", timeout=10)

    # then
    assert page.status_code == 200 and "dashboard/js/app.js" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self' ws://127.0.0.1:" in policy
    assert script.status_code == vendor.status_code == 200
    assert "javascript" in script.headers["content-type"]


def test_a_wrong_password_is_refused_on_the_login_form(browser, web, committed_db, shot):
    user = make_user()
    page = new_page(browser, web)

    # when
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")

    # then: the API's refusal is shown, and the page stays on the form
    error = page.locator("form.login-card .error")
    error.wait_for()
    assert error.inner_text()
    shot(page, "login-refused")
    assert page.locator("header.top").count() == 0


def test_the_new_bot_form_shows_the_apis_error_next_to_its_field(browser, web, committed_db, shot):
    # given: a strategy to choose and a replay market to trade
    strategy_install_builtins()
    store_replay_markets("BTC/USDT")
    user = make_user()
    page = new_page(browser, web)
    log_in(page, user.username, PASSWORD)
    page.click("#new-bot button:has-text('New bot')")

    # when: a stake the API refuses
    page.locator("datalist#strategy-names option[value=SampleStrategy]").wait_for(state="attached")
    assert page.input_value("input[name=strategy_name]") == "FreqaiExampleHybridStrategy"  # the first listed
    page.fill("input[name=strategy_name]", "SampleStrategy")
    page.fill("input[name=name]", "alpha")
    page.fill("input[name=stake_amount]", "-5")
    page.click("button:has-text('Create bot')")

    # then: the 422's message stands next to the stake field, and nothing else is blamed
    error = page.locator("[data-field=stake_amount] [data-field-error]")
    error.wait_for()
    assert "greater than 0" in error.inner_text()
    assert page.locator("[data-field-error]").count() == 1
    shot(page, "stake-error")

    # and a valid bot then appears in the fleet table
    page.fill("input[name=stake_amount]", "50")
    page.click("button:has-text('Create bot')")
    page.locator("tr[data-bot-name=alpha]").wait_for()
    assert page.locator("tr[data-bot-name=alpha] [data-status]").inner_text() == "stopped"


def test_the_fleet_fits_a_phone(browser, web, committed_db, shot):
    # given
    user = make_user()
    for name in ("alpha", "beta"):
        make_bot(owner=user, name=name)
    page = new_page(browser, web, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                    has_touch=True)  # fmt: skip

    # when
    log_in(page, user.username, PASSWORD)
    page.locator("tr[data-bot-name=beta]").wait_for()
    shot(page, "phone-fleet")

    # then: nothing is wider than the screen; each bot is a card with its commands
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    row = page.locator("tr[data-bot-name=alpha]").bounding_box()
    assert row["width"] <= 390 and row["height"] > 80
    assert page.locator("tr[data-bot-name=alpha] button", has_text="Start").first.is_visible()
    assert not page.errors


def test_the_analytics_page_shows_each_stake_currency_apart_and_a_bot_its_own_page(browser, web, committed_db, shot):
    # given: closed trades of two bots in two stake currencies
    user = make_user()
    usdt = make_bot(owner=user, name="usdt-bot")
    btc = make_bot(owner=user, name="btc-bot", stake_currency="BTC", stake_amount="0.01", pair_whitelist=["ETH/BTC"])
    now = datetime.now(UTC)
    collect(usdt, ft_trade(1, opened=now - timedelta(days=3), closed=now - timedelta(days=2), profit=12.5),
            ft_trade(2, opened=now - timedelta(days=2), closed=now - timedelta(days=1), profit=-4.0))  # fmt: skip
    collect(btc, ft_trade(1, pair="ETH/BTC", opened=now - timedelta(days=2), closed=now - timedelta(hours=5),
                          profit=0.0004, amount=0.2, open_rate=0.05))  # fmt: skip
    page = new_page(browser, web, viewport={"width": 1360, "height": 900})
    log_in(page, user.username, PASSWORD)

    # when
    page.click("nav a:has-text('Analytics')")

    # then: one card per group, never a sum; both profit lines drawn
    cards = page.locator("#performance .group-card")
    cards.first.wait_for()
    assert sorted(cards.evaluate_all("cards => cards.map(card => card.dataset.group)")) == ["BTC-true", "USDT-true"]
    assert "+8.50 USDT" in page.locator("#performance [data-group=USDT-true]").inner_text()
    assert "+0.0004000 BTC" in page.locator("#performance [data-group=BTC-true]").inner_text()
    charts = page.locator(".profit-group")
    charts.first.locator("canvas").first.wait_for()
    assert charts.evaluate_all("groups => groups.map(group => group.dataset.group)") == ["BTC-true", "USDT-true"]
    shot(page, "analytics")

    # and a bot's page has its trades and its log
    page.goto(f"{web}/#/bots/{usdt.pk}")
    page.locator("#bot-trades tr[data-trade-id]").first.wait_for()
    assert page.locator("#bot-trades tr[data-trade-id]").count() == 2
    page.locator("#bot-log pre").wait_for()
    shot(page, "bot-page")
    assert not page.errors  # no script error, nothing the Content-Security-Policy refused


def test_a_backtest_the_api_refuses_says_why_next_to_its_field(browser, web, committed_db, shot):
    # given
    strategy_install_builtins()
    user = make_user()
    page = new_page(browser, web, viewport={"width": 1360, "height": 900})
    log_in(page, user.username, PASSWORD)
    page.click("nav a:has-text('Research')")
    form = page.locator("form[data-form=backtest]")
    form.locator("select[name=strategy_name] option[value=SampleStrategy]").wait_for(state="attached")

    # when: a time range freqtrade cannot read
    form.locator("select[name=strategy_name]").select_option("SampleStrategy")
    form.locator("input[name=timerange]").fill("last tuesday")
    form.get_by_role("button", name="Start backtest").click()

    # then
    error = form.locator("[data-field=timerange] [data-field-error]")
    error.wait_for()
    assert error.inner_text()
    shot(page, "backtest-refused")
