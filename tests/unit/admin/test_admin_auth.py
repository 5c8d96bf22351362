"""Admin API authentication: the bearer token on every endpoint, and the start-up binding check."""

from __future__ import annotations

import pytest

from admin_harness import Node
from ilptx.admin.auth import check_binding, is_loopback, token_matches
from ilptx.errors import ConfigError

TOKEN = "s3cret-token"

#: every route, one request each (method, path, body)
ENDPOINTS = [
    ("GET", "/status", None), ("GET", "/routing", None), ("GET", "/accounts", None),
    ("GET", "/accounts/alice", None), ("POST", "/accounts/alice", {"x": 1}),
    ("PUT", "/accounts/carol", {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9}),
    ("DELETE", "/accounts/bob", None), ("GET", "/balance", None),
    ("POST", "/balance", {"accountId": "alice", "amountDiff": "1"}), ("GET", "/rates", None),
    ("GET", "/stats", None), ("GET", "/alerts", None), ("DELETE", "/alerts/1", None), ("GET", "/metrics", None),
    ("POST", "/addAccount", {"id": "dave", "options": {}}), ("GET", "/nope", None),
]


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
def test_every_endpoint_needs_the_token(method, path, body):
    """With adminApiToken, a request without it, or with a wrong one, is 401 and changes nothing."""
    node = Node(token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}):
        reply = node.request(method, path, body, headers=headers)
        assert reply.code == 401, headers
        assert reply.headers.getRawHeaders("www-authenticate") == ['Bearer realm="ilptx admin"']
    assert [a.id for a in node.connector.accounts] == ["alice", "bob"]
    assert node.store.balances.get("alice") is None


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
def test_the_right_token_lets_every_endpoint_through(method, path, body):
    """With the right bearer token every endpoint answers as without a token (never 401)."""
    with_token = Node(token=TOKEN).request(method, path, body, token=TOKEN)
    without = Node().request(method, path, body)
    assert with_token.code == without.code != 401
    if path not in ("/metrics", "/routing"):  # /routing carries a random routing table id per process
        assert with_token.body == without.body


def test_scheme_is_case_insensitive():
    """'bearer' and 'BEARER' are the same scheme (RFC 7235); the token itself is case-sensitive."""
    assert token_matches(b"bearer abc", b"abc") and token_matches(b"BEARER  abc ", b"abc")
    assert not token_matches(b"Bearer ABC", b"abc")
    assert not token_matches(None, b"abc") and not token_matches(b"", b"abc")


def test_no_token_configured_means_open():
    """An empty adminApiToken (the default) means no authentication, as in the reference."""
    assert Node(token="").request("GET", "/status").code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host):
    """Loopback addresses (and localhost) may serve the API without a token."""
    assert is_loopback(host)
    check_binding(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "admin.example.com", ""])
def test_non_loopback_without_token_is_refused(host):
    """Any other host without adminApiToken stops start-up with one line naming adminApiHost."""
    with pytest.raises(ConfigError) as caught:
        check_binding(host, "")
    assert str(caught.value) == f"adminApiHost: binding {host} needs adminApiToken"
    check_binding(host, TOKEN)  # with a token it is allowed
