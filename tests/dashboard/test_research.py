"""The research page on real jobs: a Celery worker runs freqtrade, the listeners relay its progress to the socket.

A user launches a backtest and a hyperopt from the forms, watches their progress bars move with the
``job_progress`` events, reads the equity curve and the tables, and cancels a running hyperopt behind a
confirmation; without the socket the page asks for its running jobs instead. Screenshots go to
test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.dashboard.conftest import log_in, new_page
from tests.factories import PASSWORD, client_for, make_user
from tests.jobs.conftest import TUNABLE, candle_sets, celery_worker, history, market, replay_url, timerange, worker_env
from tests.strategies.conftest import upload
from tests.support.processes import ROOT, database_url, server_env
from tests.support.replay import stop

# The job tests' stored candles and replay exchange, as fixtures of this module.
__all__ = ["candle_sets", "history", "market", "replay_url"]

# The page in a browser: its data come from the API, tested on both databases.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only, pytest.mark.django_db(transaction=True)]

# The job tests' crossing averages with two hyperoptable parameters, uploaded as the user's own.
SWING = TUNABLE.replace("class Tunable(IStrategy):", "class Swing(IStrategy):")
JOB_WITHIN_MS = 90_000
JOB_PATH = re.compile(r"/api/v1/jobs/\d+$")

# Every value each job row's progress bar takes, in order (the page re-renders on each job_progress event).
WATCH_PROGRESS = """() => {
  window.seenProgress = [];
  const record = () => {
    for (const bar of document.querySelectorAll("tr[data-job-id] .progress")) {
      const row = bar.closest("tr");
      const status = row.querySelector("[data-status]").dataset.status;
      const entry = [Number(row.dataset.jobId), Number(bar.dataset.progress), status];
      const last = window.seenProgress.filter((seen) => seen[0] === entry[0]).pop();
      if (!last || last[1] !== entry[1] || last[2] !== entry[2]) window.seenProgress.push(entry);
    }
  };
  new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true });
}"""

# The open job's bar part way, and the epochs it has done already in its result (read after each event).
RUNNING_WITH_EPOCHS = """() => {
  const bar = document.querySelector("#job-result .job-running .progress");
  const done = document.querySelector("#job-result [data-epochs-done]");
  const part = bar && Number(bar.dataset.progress);
  return part > 0 && part < 1 && done && Number(done.textContent) > 0;
}"""


@pytest.fixture
def jobs_system(market: str, committed_db: None) -> Iterator[None]:
    """A real Celery worker (with its job dispatcher) and the listeners, on the test database and Redis."""
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(), MULTIBOT_REPLAY_URL=market)
    listeners = subprocess.Popen([sys.executable, "manage.py", "run_listeners"], cwd=ROOT, env=env)
    try:
        with celery_worker(worker_env(market), name="research"):
            yield
    finally:
        stop(listeners)


def _research_page(browser, web, user, **context):
    page = new_page(browser, web, viewport={"width": 1360, "height": 900}, **context)
    page.job_requests = []
    page.on("request", lambda request: JOB_PATH.search(request.url) and page.job_requests.append(request.url))
    log_in(page, user.username, PASSWORD)
    page.click("nav a:has-text('Research')")
    return page


def _launch(page, kind: str, **fields: str) -> int:
    """Fill the form of ``kind`` (strategy Swing, one pair) and start it; the new job's id, from its row."""
    if kind == "hyperopt":
        page.locator(".segmented button", has_text="hyperopt").click()
    form = page.locator(f"form[data-form={kind}]")
    form.locator("select[name=strategy_name] option[value=Swing]").wait_for(state="attached")
    form.locator("select[name=strategy_name]").select_option("Swing")
    for name, value in {"timerange": timerange(3), "pairs": "BTC/USDT", **fields}.items():
        form.locator(f"[name={name}]").fill(value)
    before = set(page.locator("tr[data-job-id]").evaluate_all("rows => rows.map(row => row.dataset.jobId)"))
    form.get_by_role("button", name=f"Start {kind}").click()
    page.wait_for_function("known => document.querySelectorAll('tr[data-job-id]').length > known", arg=len(before))
    ids = page.locator("tr[data-job-id]").evaluate_all("rows => rows.map(row => row.dataset.jobId)")
    return int(next(job_id for job_id in ids if job_id not in before))


def _number(text: str) -> float:
    """The first number of a cell as the page writes it (``+1,234.56 USDT``)."""
    return float(re.search(r"[-+]?[\d,]+\.?\d*", text)[0].replace(",", ""))


def _seen_progress(page, job_id: int) -> list[tuple[float, str]]:
    seen = page.evaluate("window.seenProgress")
    return [(progress, status) for seen_id, progress, status in seen if seen_id == job_id]


def _finished(page, job_id: int, status: str = "completed") -> None:
    page.locator(f"tr[data-job-id='{job_id}'] [data-status={status}]").wait_for(timeout=JOB_WITHIN_MS)


def test_a_backtest_and_a_hyperopt_run_live_from_the_research_page(browser, web, jobs_system, shot):
    # given: the user's own hyperoptable strategy
    user = make_user()
    api = client_for(user)
    assert upload(api, SWING, filename="Swing.py").status_code == 201
    page = _research_page(browser, web, user)
    page.locator("[data-socket=open]").wait_for()
    page.evaluate(WATCH_PROGRESS)

    # when: a backtest launched from the form
    backtest = _launch(page, "backtest")

    # then: its bar moves with the socket's events while it runs, and its results appear
    _finished(page, backtest)
    seen = _seen_progress(page, backtest)
    assert any(0 < progress < 1 and status == "running" for progress, status in seen), seen
    assert [progress for progress, _ in seen] == sorted(progress for progress, _ in seen), seen
    assert seen[-1] == (1, "completed"), seen
    result = api.get(f"/api/v1/strategies/backtest/{backtest}?per_page=50").json()
    summary = result["summary"]
    assert summary["total_trades"] > 0
    page.locator("#equity-curve canvas").first.wait_for()
    assert page.locator("#equity-curve .chart-empty").count() == 0
    assert page.locator("#backtest-summary [data-fact=Trades] dd").inner_text() == str(summary["total_trades"])
    profit = page.locator("#backtest-summary [data-fact=Profit] dd").inner_text()
    assert profit.endswith(" USDT") and _number(profit) == pytest.approx(summary["profit_total_abs"], abs=0.006)
    pairs = page.locator("#results-per-pair tbody tr").evaluate_all("rows => rows.map(row => row.dataset.key)")
    assert pairs == ["BTC/USDT"]
    assert page.locator("#results-per-pair tfoot tr[data-key=TOTAL]").count() == 1
    assert page.locator("#backtest-trades tbody tr").count() == min(50, summary["total_trades"])
    first = result["trades"]["items"][0]
    shown = page.locator("#backtest-trades tr[data-trade='0'] td").nth(6).inner_text()
    assert _number(shown) == pytest.approx(first["profit_abs"], abs=0.006)
    shot(page, "backtest-result")

    # when: a hyperopt the API refuses, then a small one
    page.locator(".segmented button", has_text="hyperopt").click()
    hyperopt_form = page.locator("form[data-form=hyperopt]")
    hyperopt_form.locator("select[name=strategy_name] option[value=Swing]").wait_for(state="attached")
    hyperopt_form.locator("[name=timerange]").fill(timerange(3))
    hyperopt_form.locator("[name=epochs]").fill("0")
    hyperopt_form.get_by_role("button", name="Start hyperopt").click()
    error = hyperopt_form.locator("[data-field=epochs] [data-field-error]")
    error.wait_for()
    assert "greater than or equal to 1" in error.inner_text()
    assert page.locator("[data-field-error]").count() == 1
    shot(page, "hyperopt-refused")
    hyperopt = _launch(page, "hyperopt", epochs="8", spaces="buy sell")

    # then: its bar moves epoch by epoch, and its best epoch and the table of epochs appear
    page.wait_for_function(RUNNING_WITH_EPOCHS, timeout=JOB_WITHIN_MS)
    page.wait_for_timeout(500)  # the bar's width eases in
    shot(page, "hyperopt-running")
    _finished(page, hyperopt)
    answer = api.get(f"/api/v1/hyperopt/results/{hyperopt}").json()
    best = answer["best_result"]
    page.locator(f"#best-epoch h3:has-text('Best epoch: {best['epoch']}')").wait_for()
    assert page.locator("#epochs tbody tr").count() == 8
    assert page.locator("#epochs tbody tr").first.get_attribute("data-epoch") == str(best["epoch"])
    params = page.locator("#best-params tr[data-param]").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.dataset.param, r.querySelector('.value').textContent]))"
    )
    assert {name: json.loads(value) for name, value in params.items()} == pytest.approx(best["params"])
    seen = _seen_progress(page, hyperopt)
    assert any(0 < progress < 1 for progress, _ in seen), seen
    shot(page, "hyperopt-result")

    # when: a long hyperopt, cancelled once it runs, behind a confirmation
    long_one = _launch(page, "hyperopt", epochs="2000", spaces="buy sell")
    page.locator(f"#job-result .job-running [data-cancel-job='{long_one}']").wait_for(timeout=JOB_WITHIN_MS)
    page.wait_for_function(RUNNING_WITH_EPOCHS, timeout=JOB_WITHIN_MS)
    page.locator(f"#job-result [data-cancel-job='{long_one}']").click()
    dialog = page.get_by_role("dialog")
    assert "ended within seconds" in dialog.inner_text()
    shot(page, "cancel-confirmation")
    dialog.locator("[data-confirm]").click()

    # then: it ends cancelled and says so, its epochs so far kept
    _finished(page, long_one, "cancelled")
    page.locator("#job-result [data-outcome=cancelled]").wait_for()
    assert page.locator("#epochs tbody tr").count() >= 1
    shot(page, "hyperopt-cancelled")
    # Everything came over the socket: the page never asked for a job by itself.
    assert page.job_requests == []
    assert [error for error in page.errors if "status of 422" not in error] == []  # the refusal was expected


def test_without_the_socket_the_page_asks_for_its_running_job_until_it_ends(browser, web, jobs_system, shot):
    # given: a page, on a phone, whose socket never stays open
    user = make_user()
    assert upload(client_for(user), SWING, filename="Swing.py").status_code == 201
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)  # fmt: skip
    context.route_web_socket(re.compile(r"/ws$"), lambda socket: socket.close(code=1011))
    page = context.new_page()
    page.errors, page.job_requests = [], []
    page.on("request", lambda request: JOB_PATH.search(request.url) and page.job_requests.append(request.url))
    page.goto(web + "/")
    log_in(page, user.username, PASSWORD)
    page.click("nav a:has-text('Research')")

    # when
    backtest = _launch(page, "backtest")

    # then: polled to its end, results shown
    _finished(page, backtest)
    assert page.locator("[data-socket=open]").count() == 0
    assert page.job_requests and all(url.endswith(f"/api/v1/jobs/{backtest}") for url in page.job_requests)
    page.locator("#equity-curve canvas").first.wait_for()
    page.locator("#backtest-trades tbody tr").first.wait_for()
    page.wait_for_timeout(500)  # the bar's width eases in
    shot(page, "polled-backtest-result")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # wide tables scroll in their own box
    context.close()
