"""SPSP (RFC 9) and payment pointers (RFC 26).

* :func:`resolve_payment_pointer`: ``$example.com/bob`` → ``https://example.com/bob``,
  ``$example.com`` → ``https://example.com/.well-known/pay`` (RFC 26, "Payment Setup Protocol
  Receiver Endpoint Resolution"). An ``https://`` URL is accepted as it is; plain ``http://``
  only with ``allow_http=True`` (loopback tests, local development).
* :func:`query`: the SPSP client (treq): ``GET`` with ``Accept: application/spsp4+json,
  application/spsp+json``, returning the STREAM ``destination_account`` and ``shared_secret``.
* :class:`SpspServer`: the SPSP endpoint (Klein), answering ``application/spsp4+json`` with
  fresh STREAM credentials per query, with the CORS headers RFC 9 recommends.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Callable, Optional

from hyperlink import URL
from klein import Klein
from twisted.internet.defer import Deferred

from ilptx.codec.address import is_valid_address

__all__ = ["SPSP_CONTENT_TYPE", "SpspError", "SpspResponse", "resolve_payment_pointer", "query", "SpspServer"]

SPSP_CONTENT_TYPE = "application/spsp4+json"
ACCEPT = "application/spsp4+json, application/spsp+json"

# RFC 26: "$" host path-abempty -- a host (no userinfo, no port), then an optional path
_POINTER = re.compile(r"\$(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?P<path>(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*)")


class SpspError(Exception):
    """An SPSP query failed.

    :ivar kind: ``"invalid-pointer"``, ``"not-found"``, ``"http"``, ``"bad-response"`` or
        ``"unreachable"`` -- what a person can act on.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SpspResponse:
    """What an SPSP endpoint tells a sender (RFC 9, "Response Body").

    :ivar destination_account: the receiver's ILP address (STREAM ``destinationAccount``).
    :ivar shared_secret: 32 bytes (STREAM ``sharedSecret``).
    """

    destination_account: str
    shared_secret: bytes

    def as_json(self) -> dict:
        """:returns: the response body, the secret in base64 with padding."""
        return {"destination_account": self.destination_account,
                "shared_secret": base64.b64encode(self.shared_secret).decode("ascii")}

    @classmethod
    def from_json(cls, body: object) -> "SpspResponse":
        """Validate a response body; unknown fields are ignored (RFC 9).

        :raises SpspError: (``bad-response``) missing or invalid fields.
        """
        if not isinstance(body, dict):
            raise SpspError("bad-response", "SPSP response is not a JSON object")
        address, secret = body.get("destination_account"), body.get("shared_secret")
        if not isinstance(address, str) or not is_valid_address(address):
            raise SpspError("bad-response", f"SPSP destination_account {address!r} is not an ILP address")
        if not isinstance(secret, str):
            raise SpspError("bad-response", "SPSP shared_secret is missing")
        try:
            raw = base64.b64decode(secret.replace("-", "+").replace("_", "/") + "=" * (-len(secret) % 4),
                                   validate=True)
        except ValueError:
            raise SpspError("bad-response", "SPSP shared_secret is not base64") from None
        if len(raw) != 32:
            raise SpspError("bad-response", f"SPSP shared_secret is {len(raw)} bytes, not 32")
        return cls(address, raw)


def resolve_payment_pointer(pointer: str, allow_http: bool = False) -> str:
    """The SPSP endpoint URL of a payment pointer or URL.

    :param pointer: ``$host[/path]`` (RFC 26) or an ``https://`` URL (``http://`` too when
        ``allow_http``).
    :raises SpspError: (``invalid-pointer``) not a valid pointer or URL.
    """
    if pointer.startswith("$"):
        match = _POINTER.fullmatch(pointer)
        if match is None:
            raise SpspError("invalid-pointer", f"{pointer!r} is not a payment pointer ($host/path, RFC 26)")
        path = match.group("path")
        if path in ("", "/"):
            path = "/.well-known/pay"
        return f"https://{match.group('host')}{path}"
    try:
        url = URL.from_text(pointer)
    except Exception:
        raise SpspError("invalid-pointer", f"{pointer!r} is neither a payment pointer nor a URL") from None
    if url.scheme == "https" or (url.scheme == "http" and allow_http):
        if not url.host:
            raise SpspError("invalid-pointer", f"{pointer!r} has no host")
        return pointer
    if url.scheme == "http":
        raise SpspError("invalid-pointer", f"{pointer!r}: plain http is only allowed when explicitly enabled")
    raise SpspError("invalid-pointer", f"{pointer!r} is neither a payment pointer ($host/path) nor an https URL")


def query(pointer: str, http_client=None, allow_http: bool = False) -> Deferred:
    """Ask a receiver's SPSP endpoint for STREAM credentials (RFC 9, "Query").

    :param http_client: a treq-like client (``treq`` itself by default; ``StubTreq`` in tests).
    :returns: ``Deferred[SpspResponse]``; errbacks with :class:`SpspError`.
    """
    if http_client is None:
        import treq as http_client  # noqa: N813 -- the module is the client
    url = resolve_payment_pointer(pointer, allow_http)

    def got(response):
        if response.code == 404:
            raise SpspError("not-found", f"no receiver at {url} (404)")
        if response.code != 200:
            raise SpspError("http", f"SPSP endpoint {url} answered HTTP {response.code}")
        return response.content().addCallback(parse)

    def parse(content: bytes) -> SpspResponse:
        try:
            body = json.loads(content)
        except ValueError:
            raise SpspError("bad-response", f"SPSP endpoint {url} did not answer JSON") from None
        return SpspResponse.from_json(body)

    def unreachable(failure):
        if failure.check(SpspError):
            return failure
        raise SpspError("unreachable", f"cannot reach SPSP endpoint {url}: {failure.getErrorMessage()}")

    d = http_client.get(url, headers={"Accept": [ACCEPT]})
    return d.addCallback(got).addErrback(unreachable)


class SpspServer:
    """An SPSP endpoint (Klein): every ``GET`` gets fresh STREAM credentials.

    :param credentials: ``callable() -> SpspResponse`` (the STREAM server's
        ``generate_address_and_secret``), or ``None`` while it is not ready (503).
    :param paths: the URL paths served, default ``/`` and ``/.well-known/pay``.
    """

    app = Klein()

    def __init__(self, credentials: Callable[[], Optional[SpspResponse]], paths=("/", "/.well-known/pay")) -> None:
        self._credentials = credentials
        self._paths = tuple(paths)

    def resource(self):
        """:returns: the Twisted web resource to serve."""
        return self.app.resource()

    @staticmethod
    def _cors(request) -> None:
        request.setHeader("Access-Control-Allow-Origin", "*")
        request.setHeader("Access-Control-Allow-Headers", "web-monetization-id")

    @app.route("/", branch=True, methods=["GET"])
    def get(self, request):
        """Answer a query with fresh credentials (``application/spsp4+json``)."""
        self._cors(request)
        if request.path.decode("ascii", "replace") not in self._paths:
            request.setResponseCode(404)
            request.setHeader("Content-Type", SPSP_CONTENT_TYPE)
            return json.dumps({"id": "InvalidReceiverError", "message": "Invalid receiver ID"})
        credentials = self._credentials()
        if credentials is None:
            request.setResponseCode(503)
            request.setHeader("Content-Type", "text/plain; charset=utf-8")
            return "receiver not ready"
        request.setHeader("Content-Type", SPSP_CONTENT_TYPE)
        request.setHeader("Cache-Control", "no-cache")
        return json.dumps(credentials.as_json())

    @app.route("/", branch=True, methods=["OPTIONS"])
    def options(self, request):
        """CORS pre-flight (RFC 9 asks for the headers on OPTIONS too)."""
        self._cors(request)
        request.setResponseCode(204)
        return b""
