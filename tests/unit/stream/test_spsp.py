"""SPSP (RFC 9) client and server, payment pointers (RFC 26): no sockets (StubTreq)."""

from __future__ import annotations

import base64
import json

import pytest
from treq.testing import StubTreq

from ilptx.stream.spsp import SPSP_CONTENT_TYPE, SpspError, SpspResponse, SpspServer, query, resolve_payment_pointer

SECRET = bytes(range(32))


@pytest.mark.parametrize("pointer, url", [
    ("$example.com", "https://example.com/.well-known/pay"),
    ("$example.com/", "https://example.com/.well-known/pay"),
    ("$example.com/invoices/12345", "https://example.com/invoices/12345"),
    ("$bob.example.com", "https://bob.example.com/.well-known/pay"),
    ("$example.com/bob", "https://example.com/bob"),
    ("https://example.com/x", "https://example.com/x"),
])
def test_payment_pointers_resolve_as_rfc26(pointer, url):
    """The RFC 26 examples resolve to their endpoint URLs; https URLs pass through."""
    assert resolve_payment_pointer(pointer) == url


@pytest.mark.parametrize("pointer", ["$", "$user@example.com", "$example.com:8080/x", "$example.com/a?b=1",
                                     "example.com/bob", "ftp://example.com", "http://example.com/x"])
def test_invalid_pointers_are_refused(pointer):
    """No userinfo, port, query; no plain http unless allowed."""
    with pytest.raises(SpspError) as info:
        resolve_payment_pointer(pointer)
    assert info.value.kind == "invalid-pointer"


def test_plain_http_only_when_allowed():
    """http:// works only with allow_http (loopback tests)."""
    assert resolve_payment_pointer("http://127.0.0.1:8080/pay", allow_http=True) == "http://127.0.0.1:8080/pay"


def server_client(credentials=lambda: SpspResponse("test.node.bob.abc", SECRET)):
    return StubTreq(SpspServer(credentials).resource())


def run(d, client):
    out = []
    d.addBoth(out.append)
    client.flush()
    return out[0]


def test_server_answers_spsp4_json_with_cors():
    """GET returns application/spsp4+json with destination_account and a base64 shared_secret, plus CORS."""
    client = server_client()
    response = run(client.get("http://receiver/.well-known/pay", headers={"Accept": [SPSP_CONTENT_TYPE]}), client)
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == [SPSP_CONTENT_TYPE]
    assert response.headers.getRawHeaders("access-control-allow-origin") == ["*"]
    body = json.loads(run(response.content(), client))
    assert body == {"destination_account": "test.node.bob.abc",
                    "shared_secret": base64.b64encode(SECRET).decode()}


def test_server_options_and_unknown_path():
    """OPTIONS is a CORS pre-flight; an unknown path is RFC 9's 404 InvalidReceiverError."""
    client = server_client()
    response = run(client.request("OPTIONS", "http://receiver/"), client)
    assert response.code == 204 and response.headers.getRawHeaders("access-control-allow-headers") == [
        "web-monetization-id"]
    response = run(client.get("http://receiver/nobody"), client)
    assert response.code == 404
    assert json.loads(run(response.content(), client))["id"] == "InvalidReceiverError"


def test_client_query_round_trip():
    """The client resolves, queries and decodes what the server generated."""
    client = server_client()
    result = run(query("http://receiver/.well-known/pay", http_client=client, allow_http=True), client)
    assert result == SpspResponse("test.node.bob.abc", SECRET)


def test_client_errors_a_person_can_act_on():
    """404 → not-found; a bad body → bad-response; a 503 → http."""
    client = server_client()
    failure = run(query("http://receiver/nobody", http_client=client, allow_http=True), client)
    assert failure.value.kind == "not-found"
    client = server_client(lambda: None)
    failure = run(query("http://receiver/", http_client=client, allow_http=True), client)
    assert failure.value.kind == "http"
    with pytest.raises(SpspError) as info:
        SpspResponse.from_json({"destination_account": "test.x.y", "shared_secret": "c2hvcnQ="})
    assert info.value.kind == "bad-response" and "not 32" in str(info.value)
