"""Admin API authentication: a bearer token (``adminApiToken``), and where it is required.

The reference connector's admin API has no authentication and relies on listening on
127.0.0.1. ilptx keeps that default and adds an optional token: with ``adminApiToken`` set,
every request needs ``Authorization: Bearer <token>`` (compared in constant time), or gets
``401``. Listening on anything but a loopback address without a token is refused at
start-up (:func:`check_binding`), since the API can move balances and add accounts.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Optional

from twisted.web.resource import IResource, Resource

from ilptx.errors import ConfigError

__all__ = ["BearerTokenGuard", "check_binding", "is_loopback", "token_matches"]


def is_loopback(host: str) -> bool:
    """:returns: whether ``host`` (an IP address or ``localhost``) only accepts local
    connections; any other host name counts as not loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: Optional[str]) -> None:
    """Refuse to serve the admin API beyond this machine without a token.

    :raises ConfigError: ``adminApiHost: binding 0.0.0.0 needs adminApiToken``.
    """
    if not token and not is_loopback(host):
        raise ConfigError("adminApiHost", f"binding {host} needs adminApiToken")


def token_matches(authorization: Optional[bytes], token: bytes) -> bool:
    """:param authorization: the ``Authorization`` header value (or ``None``).
    :param token: the expected token.
    :returns: whether it is ``Bearer <token>`` (scheme case-insensitive; the token is
        compared in constant time)."""
    if not authorization:
        return False
    scheme, _, given = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(given.strip(), token)


class BearerTokenGuard(Resource):
    """Wraps a leaf resource (a Klein app's) and lets a request through only with the token.

    :param wrapped: the resource to serve, e.g. ``klein_app.resource()``.
    :param token: the bearer token (``str``); requests without it get ``401`` with
        ``WWW-Authenticate: Bearer`` and a one-line text body.
    :param public: request paths (``bytes``, exactly as sent, without the query) served
        without the token: the dashboard's static files, which hold no data. Any other
        spelling of them (``%2F``, ``//``) needs the token.
    """

    isLeaf = True

    def __init__(self, wrapped: IResource, token: str, public: frozenset = frozenset()) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._token = token.encode("utf-8")
        self._public = public

    def render(self, request):
        """Check ``Authorization`` (unless the path is public), then render the wrapped resource."""
        if request.path not in self._public and not token_matches(request.getHeader(b"authorization"), self._token):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="ilptx admin"')
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"missing or wrong bearer token (Authorization: Bearer <adminApiToken>)\n"
        return self._wrapped.render(request)
