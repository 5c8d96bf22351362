"""The dashboard in a real browser: Debian's headless Chromium (/usr/bin/chromium) driven by
Playwright, against a live ``twistd -n ilpconnector`` with two BTP child accounts and a load
generator (``dashboard_loadgen.py``, real BtpPlugin clients) sending through it.

One connector and one browser for the module; each test gets its own page (its own
sessionStorage). A screenshot of the page under load is written to
``$ILPTX_TEST_ARTIFACTS`` (default ``build/test-artifacts/``) as ``dashboard.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from integration.procs import REPO, Process, free_ports, twistd_connector, wait_for_port

pytestmark = pytest.mark.integration

TOKEN = "dashboard-token-0123"
CHROMIUM = "/usr/bin/chromium"
ADDRESS = "test.dash"
ARTIFACTS = Path(os.environ.get("ILPTX_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))


def btp_child(port: int, balance: dict, secret: str) -> dict:
    return {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 6, "balance": balance,
            "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": secret}}}


def http(port: int, method: str, path: str, token=TOKEN, body=None):
    """:returns: (status, parsed JSON or text)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw, status, kind = response.read(), response.status, response.headers["Content-Type"] or ""
    except urllib.error.HTTPError as error:
        raw, status, kind = error.read(), error.code, error.headers["Content-Type"] or ""
    return status, json.loads(raw) if kind.startswith("application/json") else raw.decode()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A connector with children alice and bob: ``(admin port, alice port, bob port)``."""
    admin, alice, bob = free_ports(3)
    config = {"ilpAddress": ADDRESS, "spread": 0, "adminApi": True, "adminApiHost": "127.0.0.1",
              "adminApiPort": admin, "adminApiToken": TOKEN,
              "accounts": {"alice": btp_child(alice, {"minimum": "-1000000", "maximum": "1000000000",
                                                      "settleThreshold": "-500000", "settleTo": "0"}, "alice"),
                           "bob": btp_child(bob, {"minimum": "-1000000000", "maximum": "1000000"}, "bob")}}
    path = tmp_path_factory.mktemp("dashboard") / "connector.json"
    path.write_text(json.dumps(config))
    connector = twistd_connector(["--config", str(path)])
    try:
        for port in (admin, alice, bob):
            wait_for_port(port, connector)
        yield admin, alice, bob
        assert "Traceback" not in connector.full_output(), connector.output()
    finally:
        connector.stop()
        connector.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, through Playwright (its own browser download is not used)."""
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, node):
    """A fresh page (its own sessionStorage) on /dashboard/, with page errors collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"http://127.0.0.1:{node[0]}/dashboard/")
    yield page
    assert page.errors == []
    context.close()


def sign_in(page, token=TOKEN):
    page.get_by_label("Admin API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page):
    sign_in(page)
    page.locator("#accounts-table tbody tr[data-account]").nth(1).wait_for()


def balance_cell(page, account: str):
    return page.locator(f'tr[data-account="{account}"] td[data-balance]')


def counter_above(page, floor: int, timeout: float = 10.0) -> int:
    """Wait until the page's live packet counter is above ``floor`` (the page's CSP forbids the
    string evaluation of Playwright's wait_for_function); :returns: its value."""
    deadline = time.monotonic() + timeout
    while True:
        text = page.locator("#packets-total").inner_text()
        if int(text) > floor:
            return int(text)
        assert time.monotonic() < deadline, f"the live packet counter stayed at {text} (wanted > {floor})"
        time.sleep(0.2)


@pytest.fixture
def load(node):
    """The load generator running against the connector (stopped at teardown)."""
    _, alice, bob = node
    process = Process([sys.executable, str(REPO / "tests" / "integration" / "dashboard_loadgen.py"),
                       str(alice), str(bob), ADDRESS, "200"])
    deadline = time.monotonic() + 20
    while "connected" not in process.full_output():
        assert process.proc.poll() is None and time.monotonic() < deadline, process.output()
        time.sleep(0.05)
    yield process
    process.close()


def test_wrong_token_is_refused_and_the_right_one_kept_for_the_session_only(page, node):
    """A wrong token shows the 401 error and no data; the right one shows the accounts, kept in sessionStorage only."""
    sign_in(page, "not-the-token")
    expect(page.locator("#login-error")).to_have_text("Wrong token: the admin API answered 401.")
    assert page.locator("#accounts-table").count() == 0
    signed_in(page)
    assert page.evaluate("sessionStorage.getItem('ilptx-admin-token')") == TOKEN
    assert page.evaluate("localStorage.length") == 0 and TOKEN not in page.url
    assert page.context.cookies() == []
    expect(page.locator("#ilp-address")).to_have_text(ADDRESS)
    # a reload in the same tab keeps the session; signing out forgets the token
    page.reload()
    page.locator("#accounts-table").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Admin API token").wait_for()
    assert page.evaluate("sessionStorage.length") == 0


def test_accounts_and_routes_match_the_admin_api(page, node):
    """Both accounts with the balances, limits and settle threshold of /balance, and every route of /routing."""
    signed_in(page)
    status, balances = http(node[0], "GET", "/balance")
    assert status == 200
    for account in ("alice", "bob"):
        expect(balance_cell(page, account)).to_have_attribute("data-balance", balances["accounts"][account]["balance"])
    alice = page.locator('tr[data-account="alice"]')
    expect(alice).to_contain_text("child")
    expect(alice).to_contain_text("−1 USD … 1000 USD")  # minimum and maximum with the asset scale (6)
    expect(alice).to_contain_text("−0.5 USD")  # settle threshold
    expect(alice.get_by_role("meter")).to_have_count(1)
    status, routing = http(node[0], "GET", "/routing")
    rows = page.locator("#routes-table tbody tr")
    expect(rows).to_have_count(len(routing["localRoutingTable"]))
    shown = {row.get_attribute("data-prefix"): row.locator("td").nth(1).inner_text() for row in rows.all()}
    assert shown == {prefix: route["nextHop"] or "(this connector)"
                     for prefix, route in routing["localRoutingTable"].items()}
    expect(page.locator("#ccp-epoch")).to_have_text(str(routing["currentEpoch"]))


def test_live_counter_rises_under_load_and_a_screenshot_is_saved(page, node, load):
    """While the load generator runs, the live packet counter and the per-account rates rise without a reload."""
    signed_in(page)
    first = counter_above(page, 0)
    counter_above(page, first + 200)  # 200 Prepares a second: within a few samples
    rates = page.locator('tr[data-account="alice"] td.num').nth(2).inner_text()
    fulfilled, rejected = (float(x) for x in rates.split(" / "))
    assert fulfilled > 0 and rejected > 0, rates  # one in ten goes nowhere: F02
    assert re.search(r"F02 ×\d+", page.locator('tr[data-account="alice"] td.codes').inner_text())
    page.locator(".chart canvas").first.wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10000


def test_an_alert_is_shown_and_dismissed_in_the_page(page, node, load):
    """The peer's T04 'exceeded maximum balance.' shows as an alert; Dismiss… and confirm removes it from /alerts."""
    signed_in(page)
    alerts = http(node[0], "GET", "/alerts")[1]["alerts"]
    assert [(a["accountId"], a["message"]) for a in alerts] == [("bob", "exceeded maximum balance.")]
    expect(page.locator("#alerts-title")).to_have_text("Alerts (1)")
    page.get_by_role("button", name=f"Dismiss alert {alerts[0]['id']}").click()
    page.get_by_role("dialog").get_by_role("button", name="Dismiss").click()
    expect(page.locator("#alerts-title")).to_have_text("Alerts (0)")
    assert http(node[0], "GET", "/alerts")[1]["alerts"] == []


def test_balance_adjustment_in_the_page_shows_in_balance(page, node):
    """Adjust… on alice (by keyboard and cancelled; a bad amount refused), +1234567 confirmed: /balance moves by that."""
    signed_in(page)
    before = int(http(node[0], "GET", "/balance")[1]["accounts"]["alice"]["balance"])
    # by keyboard: Enter opens the dialog with the amount focused, Escape cancels it
    adjust = page.get_by_role("button", name="Adjust the balance of alice")
    adjust.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label(re.compile("Change in base units"))).to_be_focused()
    page.keyboard.type("5")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert int(http(node[0], "GET", "/balance")[1]["accounts"]["alice"]["balance"]) == before
    adjust.click()
    dialog.get_by_label(re.compile("Change in base units")).fill("1.5")
    dialog.get_by_role("button", name="Apply the change").click()
    expect(dialog.get_by_role("alert")).to_contain_text("whole number of base units")
    dialog.get_by_label(re.compile("Change in base units")).fill("1234567")
    expect(dialog.locator("#amount-preview")).to_contain_text("+1.234567 USD")
    dialog.get_by_role("button", name="Apply the change").click()
    expect(page.locator("#notice")).to_contain_text("Balance of alice is now")
    after = int(http(node[0], "GET", "/balance")[1]["accounts"]["alice"]["balance"])
    assert after - before == 1234567
    expect(balance_cell(page, "alice")).to_have_attribute("data-balance", str(after), timeout=5000)


def test_add_and_remove_a_runtime_account_in_the_page(page, node):
    """Adding a config account is refused with the API's 409 in the dialog; carol is added, shown, then removed."""
    signed_in(page)
    (carol_port,) = free_ports(1)
    settings = json.dumps({"relation": "child", "plugin": "btp", "assetCode": "EUR", "assetScale": 2,
                           "balance": {"maximum": "100000"},
                           "options": {"listener": {"port": carol_port, "secret": "carol"}}})
    page.get_by_label("Account id").fill("alice")
    page.get_by_label(re.compile("^Settings")).fill(settings)
    page.get_by_role("button", name="Add…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Add the account").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "PUT /accounts/alice failed: 409 accounts.alice is defined in the config file; change it there")
    dialog.get_by_role("button", name="Cancel").click()
    page.get_by_label("Account id").fill("carol")
    page.get_by_role("button", name="Add…").click()
    page.get_by_role("dialog").get_by_role("button", name="Add the account").click()
    expect(page.locator("#notice")).to_contain_text("Account carol added")
    expect(page.locator('tr[data-account="carol"]')).to_contain_text("0 EUR")
    assert "carol" in http(node[0], "GET", "/accounts")[1]["accounts"]
    page.get_by_role("button", name="Remove account carol").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator('tr[data-account="carol"]')).to_have_count(0)
    assert set(http(node[0], "GET", "/accounts")[1]["accounts"]) == {"alice", "bob"}


def test_without_the_token_every_dashboard_data_route_and_the_stream_are_401(node):
    """The page's static files answer without the token; its data routes and the live stream do not."""
    port = node[0]
    for path in ("/dashboard/", "/dashboard/dashboard.js", "/dashboard/dashboard.css"):
        assert http(port, "GET", path, token=None)[0] == 200, path
    for path in ("/dashboard/api/routes", "/dashboard/api/live", "/accounts", "/balance", "/routing", "/alerts",
                 "/accounts/alice"):
        for token in (None, "wrong"):
            assert http(port, "GET", path, token=token)[0] == 401, (path, token)
    for method, path, body in (("POST", "/balance", {"accountId": "alice", "amountDiff": "1"}),
                               ("DELETE", "/accounts/bob", None), ("DELETE", "/alerts/1", None),
                               ("PUT", "/accounts/carol", {"relation": "child", "plugin": "btp"})):
        assert http(port, method, path, token=None, body=body)[0] == 401, path
    assert set(http(port, "GET", "/balance")[1]["accounts"]) == {"alice", "bob"}


def test_without_a_configured_token_the_page_opens_directly(browser, processes, tmp_path):
    """With no adminApiToken (a loopback-only API) the page asks for nothing and shows the accounts."""
    admin, alice = free_ports(2)
    path = tmp_path / "open.json"
    path.write_text(json.dumps({"ilpAddress": "test.open", "adminApi": True, "adminApiHost": "127.0.0.1",
                                "adminApiPort": admin,
                                "accounts": {"alice": btp_child(alice, {"maximum": "10"}, "alice")}}))
    connector = processes.connector(["--config", str(path)])
    wait_for_port(admin, connector)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{admin}/dashboard/")
        expect(page.locator('tr[data-account="alice"]')).to_contain_text("0 USD")
        assert page.get_by_label("Admin API token").count() == 0
        assert page.evaluate("sessionStorage.length") == 0
    finally:
        context.close()
