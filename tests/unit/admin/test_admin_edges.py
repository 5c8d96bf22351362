"""Admin API edges: whole-string amounts, bounded bodies (size, depth, digits), and runtime
accounts that must start before they are kept (issue 8, defect 6)."""

from __future__ import annotations

import json

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.testing import StringTransport

from admin_harness import Node, child, result_of
from ilptx.admin.api import MAX_AMOUNT_DIGITS, MAX_BODY_BYTES, MAX_JSON_DEPTH, BoundedRequest
from ilptx.node import runtime_account_config

CAROL = {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9, "balance": {"maximum": "50"}}


@pytest.fixture
def node():
    return Node()


def nested(depth: int):
    """``depth`` levels of lists around a 1."""
    value = 1
    for _ in range(depth):
        value = [value]
    return value


# -- amounts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("diff", ["5\n", "\n5", " 5", "5 ", "-5\n", "٣", "1" * (MAX_AMOUNT_DIGITS + 1), "1" * 5000])
def test_amount_diff_must_be_the_whole_string_and_bounded(node, diff):
    """POST /balance: amountDiff is matched as a whole (no trailing newline) and holds at most 100 digits."""
    reply = node.request("POST", "/balance", {"accountId": "alice", "amountDiff": diff})
    assert reply.code == 400 and reply.text.startswith("invalid balance update: amountDiff must be"), reply.text
    assert node.store.balances.get("alice") is None


def test_amount_diff_of_the_most_digits_is_applied(node):
    """POST /balance: the largest amountDiff admitted (100 digits) is applied exactly."""
    diff = "9" * MAX_AMOUNT_DIGITS
    reply = node.request("POST", "/balance", {"accountId": "alice", "amountDiff": "-" + diff})
    assert (reply.code, reply.json["balance"]) == (200, "-" + diff)


def test_json_number_with_too_many_digits_is_400(node):
    """A JSON number of 5000 digits (past Python's int-string limit) is 400, not 500."""
    raw = b'{"accountId": "alice", "amountDiff": 1' + b"0" * 4999 + b"}"
    reply = node.request("POST", "/balance", raw=raw)
    assert (reply.code, reply.text) == (400, f"invalid JSON body: a number has more than {MAX_AMOUNT_DIGITS} digits\n")


def test_json_constants_are_not_json(node):
    """NaN and Infinity (which Python's json takes) are refused as the invalid JSON they are."""
    reply = node.request("POST", "/accounts/alice", raw=b'{"x": NaN}')
    assert (reply.code, reply.text) == (400, "invalid JSON body: NaN is not JSON\n")


@pytest.mark.parametrize("alert_id", ["²", "1" * 5000])
def test_alert_id_must_be_ascii_digits(node, alert_id):
    """DELETE /alerts/ID: an id of Unicode digits or of 5000 digits is 400 (int() would raise)."""
    reply = node.request("DELETE", f"/alerts/{alert_id}")
    assert reply.code == 400 and reply.text.startswith("invalid alert id"), reply.text


def test_account_amount_with_a_trailing_newline_is_400(node):
    """PUT /accounts/ID: balance limits are matched as whole strings, as the config file's are."""
    reply = node.request("PUT", "/accounts/carol", {**CAROL, "balance": {"maximum": "50\n"}})
    assert reply.code == 400 and reply.text.startswith("accounts.carol.balance.maximum: must be"), reply.text
    assert "carol" not in node.connector.accounts and node.store.data == {}


# -- bodies ---------------------------------------------------------------------------------------

def test_deeply_nested_body_is_400(node):
    """100000 nested arrays (RecursionError in json) and 33 levels are 400; 32 levels are taken."""
    reply = node.request("POST", "/accounts/alice", raw=b"[" * 100000)
    assert (reply.code, reply.text) == (400, f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels\n")
    reply = node.request("PUT", "/accounts/carol", {**CAROL, "options": {"x": nested(MAX_JSON_DEPTH - 1)}})
    assert (reply.code, reply.text) == (400, f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels\n")
    assert "carol" not in node.connector.accounts
    assert node.request("PUT", "/accounts/carol", {**CAROL, "options": {"x": nested(MAX_JSON_DEPTH - 2)}}).code == 201


def test_nesting_is_measured_before_json_parses_it(node, monkeypatch):
    """A deeply nested body is refused before json.loads recurses into it (a raised recursion limit would crash)."""
    import json as json_module

    from ilptx.admin import api

    parsed = []
    monkeypatch.setattr(api.json, "loads", lambda *a, **k: parsed.append(a) or json_module.loads(*a, **k))
    reply = node.request("POST", "/balance", raw=b'{"accountId": "alice", "x": ' + b"[" * 200000)
    assert (reply.code, reply.text) == (400, f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels\n")
    assert parsed == []


@pytest.mark.parametrize("text, depth", [
    ("3", 0), ('"[[["', 0), ("[]", 1), ('{"a": [1, {"b": "]]}}"}]}', 3), ('["\\"[", []]', 2),
    ('[["unclosed', 2), ("[" * 40 + "]" * 40, 40), ('"\\' * 1000, 0),
])
def test_nesting_depth_ignores_brackets_in_strings(text, depth):
    """The nesting scan counts array/object brackets only, outside string literals (escapes included)."""
    from ilptx.admin.api import _nesting_depth

    assert _nesting_depth(text) == depth


def test_body_over_the_limit_is_413(node):
    """A body one byte over MAX_BODY_BYTES is 413 (even valid JSON); one at the limit is read."""
    body = b'{"accountId": "alice", "amountDiff": "1"}'
    reply = node.request("POST", "/balance", raw=body + b" " * (MAX_BODY_BYTES + 1 - len(body)))
    assert (reply.code, reply.text) == (413, f"request body too large: the admin API reads at most "
                                             f"{MAX_BODY_BYTES} bytes\n")
    assert node.store.balances.get("alice") is None
    reply = node.request("POST", "/balance", raw=body + b" " * (MAX_BODY_BYTES - len(body)))
    assert reply.code == 200


def _http(node, head: bytes, chunks):
    """Feed one HTTP request to the admin API's Site over a StringTransport.

    :returns: (the response bytes, the most body bytes the request held at any time)."""
    site = node.api.site()
    assert site.requestFactory is BoundedRequest
    requests = []

    class Recorded(site.requestFactory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            requests.append(self)

    site.requestFactory = Recorded
    protocol = site.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(head)
    largest = 0
    for chunk in chunks:
        protocol.dataReceived(chunk)
        content = requests[-1].content
        if content is not None:
            largest = max(largest, content.tell())
    return transport.value(), largest


def test_site_drops_a_body_over_the_limit_by_content_length(node):
    """The Site keeps none of a 10 MB body (Content-Length) and answers 413 once it has arrived."""
    size = 10 * 1024 * 1024
    head = (b"POST /balance HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % size)
    response, kept = _http(node, head, [b" " * (1024 * 1024)] * 10)
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]
    assert b"request body too large" in response
    assert kept == 0


def test_site_drops_a_chunked_body_over_the_limit(node):
    """A chunked body stops being kept once past MAX_BODY_BYTES; the answer is 413."""
    head = b"POST /balance HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b" " * (256 * 1024))
    response, kept = _http(node, head, [chunk] * 8 + [b"0\r\n\r\n"])
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]
    assert kept <= MAX_BODY_BYTES


def test_site_reads_a_normal_body(node):
    """Through the same Site, an ordinary POST /balance is applied (200)."""
    body = b'{"accountId": "alice", "amountDiff": "7"}'
    head = b"POST /balance HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    response, _ = _http(node, head, [body])
    assert response.startswith(b"HTTP/1.1 200 "), response[:200]
    assert node.store.balances["alice"].balance == 7


# -- runtime accounts: start first, keep only what started ---------------------------------------

class Plugins:
    """Wraps the "mem" plugins the node builds: ``connect`` (if set) replaces the next
    plugins' connect() (a callable returning a Deferred); disconnects are recorded."""

    def __init__(self, node: Node) -> None:
        self.connect = None
        self.disconnected = []
        original = node.connector._account_builder

        def build(account_config):
            account = original(account_config)
            if self.connect is not None:
                account.plugin.connect = self.connect
            plugin_disconnect = account.plugin.disconnect

            def disconnect():
                self.disconnected.append(account.id)
                return plugin_disconnect()

            account.plugin.disconnect = disconnect
            return account

        node.connector._account_builder = build


def failing_once(error):
    """A connect() for :class:`Plugins` that fails with ``error`` the first time only."""
    calls = []

    def connect():
        calls.append(1)
        return fail(error) if len(calls) == 1 else succeed(None)

    return connect


def test_put_account_whose_plugin_cannot_listen_is_refused_and_not_kept(node):
    """PUT: a plugin whose connect() fails (port in use) is 409 with the cause; nothing is routed or stored."""
    plugins = Plugins(node)
    plugins.connect = lambda: fail(CannotListenError("127.0.0.1", 7768, OSError(98, "Address already in use")))
    reply = node.request("PUT", "/accounts/carol", CAROL)
    assert reply.code == 409, reply.text
    assert reply.text.startswith("accounts.carol.options: the mem plugin did not start: Couldn't listen on "
                                 "127.0.0.1:7768"), reply.text
    assert "carol" not in node.connector.accounts and "carol" not in node.connector.switch.pipelines
    assert node.connector.routing_table.resolve("test.node.carol") is None
    assert node.store.data == {} and plugins.disconnected == ["carol"]
    plugins.connect = None
    assert node.request("PUT", "/accounts/carol", CAROL).code == 201  # the id is free again


def test_put_account_that_does_not_connect_in_time_is_refused(node):
    """PUT: a plugin still connecting after initialConnectTimeout is disconnected and refused (409)."""
    plugins = Plugins(node)
    plugins.connect = Deferred
    d = node.http.request("PUT", "http://127.0.0.1:7780/accounts/carol", data=json.dumps(CAROL).encode())
    node.http.flush()
    answered = []
    d.addCallback(answered.append)
    node.clock.advance(node.config.raw["initialConnectTimeout"] / 1000.0 - 0.001)
    node.http.flush()
    assert answered == [] and "carol" in node.connector.accounts
    node.clock.advance(0.001)
    node.http.flush()
    (response,) = answered
    text = result_of(response.text())
    assert response.code == 409
    assert text == "accounts.carol.options: the mem plugin did not start: not connected within " \
                   "initialConnectTimeout (10000 ms)\n"
    assert "carol" not in node.connector.accounts and node.store.data == {} and plugins.disconnected == ["carol"]


def test_replacing_with_settings_that_do_not_start_keeps_the_old_account(node):
    """PUT over a runtime account with settings whose plugin does not start: 409, the old account is back."""
    assert node.request("PUT", "/accounts/carol", CAROL).code == 201
    plugins = Plugins(node)
    plugins.connect = failing_once(CannotListenError("127.0.0.1", 1, OSError(13, "Permission denied")))
    reply = node.request("PUT", "/accounts/carol", {**CAROL, "balance": {"maximum": "99"}})
    assert reply.code == 409 and "Permission denied" in reply.text, reply.text
    assert node.connector.accounts.get("carol").settings["balance"] == {"maximum": "50"}
    assert json.loads(node.store.data["account:carol"]) == CAROL
    assert node.connector.routing_table.resolve("test.node.carol") == "carol"


def test_add_account_reference_form_that_does_not_start_is_409(node):
    """POST /addAccount: a plugin that does not start is 409 and nothing is kept."""
    Plugins(node).connect = lambda: fail(CannotListenError("no.such.host", 1, OSError("Name or service not known")))
    reply = node.request("POST", "/addAccount", {"id": "dave", "options": CAROL})
    assert reply.code == 409 and "did not start: Couldn't listen on no.such.host:1" in reply.text, reply.text
    assert "dave" not in node.connector.accounts and node.store.data == {}


def test_store_write_failure_removes_the_started_account(node):
    """A started account whose settings cannot be stored is removed again (not left unremembered)."""
    plugins = Plugins(node)
    node.store.put = lambda key, value: fail(OSError(28, "No space left on device"))
    failures = []
    node.connector.add_account(runtime_account_config("carol", CAROL, "test.node")).addErrback(failures.append)
    assert failures and failures[0].check(OSError)
    assert "carol" not in node.connector.accounts and plugins.disconnected == ["carol"]


# -- runtime accounts: listeners default to loopback ----------------------------------------------

@pytest.mark.parametrize("plugin, options, expected", [
    ("btp", {"listener": {"port": 0, "secret": "s"}}, {"listener": {"port": 0, "secret": "s", "host": "127.0.0.1"}}),
    ("btp", {"listener": {"port": 0, "secret": "s", "host": "0.0.0.0"}},
     {"listener": {"port": 0, "secret": "s", "host": "0.0.0.0"}}),
    ("btp", {"server": "btp+ws://:t@127.0.0.1:1"}, {"server": "btp+ws://:t@127.0.0.1:1"}),
    ("mini-accounts", {}, {"listener": {"host": "127.0.0.1"}}),
    ("ilp-plugin-mini-accounts", {"port": 0}, {"port": 0, "listener": {"host": "127.0.0.1"}}),
    ("mini-accounts", {"listener": {"port": 0}}, {"listener": {"port": 0, "host": "127.0.0.1"}}),
])
def test_runtime_listeners_default_to_loopback(plugin, options, expected):
    """An account added at run time listens on 127.0.0.1 unless its listener names a host."""
    settings = {**child(plugin=plugin), "options": options}
    config = runtime_account_config("carol", settings, "test.node")
    assert json.loads(json.dumps(dict(config.options), default=dict)) == expected


def test_runtime_account_validates_while_our_address_is_unknown():
    """A child added before the parent told us our address validates (the address is not its business)."""
    config = runtime_account_config("carol", CAROL, "unknown")
    assert (config.id, config.relation) == ("carol", "child")
