"""The ``ilptx`` command: receive payments at an SPSP endpoint (and, once the STREAM sender
lands, pay a payment pointer) through a connector.

::

    ilptx receive --uplink btp+ws://user:token@127.0.0.1:7768 --port 8080

connects to the connector as a BTP client (``--uplink``), takes its address with IL-DCP,
serves SPSP (RFC 9) on ``--host:--port`` and prints one line per payment received (one JSON
object per line with ``--json``) until SIGINT/SIGTERM.

Exit codes: 0 done; 1 the payment failed; 2 usage; 3 the uplink is unreachable or refused
us; 4 the payment pointer could not be resolved or queried.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

EXIT_OK, EXIT_PAYMENT_FAILED, EXIT_USAGE, EXIT_UPLINK, EXIT_POINTER = 0, 1, 2, 3, 4
UPLINK_TIMEOUT_S = 10.0

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_PAYMENT_FAILED", "EXIT_USAGE", "EXIT_UPLINK", "EXIT_POINTER"]


class CommandError(Exception):
    """A failure a person can act on: one line, and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    """:returns: the argument parser of ``ilptx``."""
    parser = argparse.ArgumentParser(prog="ilptx", description="Send and receive Interledger payments (STREAM, SPSP).")
    sub = parser.add_subparsers(dest="command", required=True)
    receive = sub.add_parser("receive", help="receive payments at an SPSP endpoint")
    receive.add_argument("--uplink", required=True, help="BTP URL of your connector account, btp+ws://user:token@host:port")
    receive.add_argument("--port", type=int, required=True, help="TCP port of the SPSP endpoint")
    receive.add_argument("--host", default="127.0.0.1", help="interface of the SPSP endpoint (default 127.0.0.1)")
    receive.add_argument("--json", action="store_true", help="one JSON object per line")
    receive.add_argument("--uplink-timeout", type=float, default=UPLINK_TIMEOUT_S,
                         help="seconds to wait for the uplink before giving up (default 10)")
    return parser


def _connect_uplink(reactor, uplink: str, timeout: float = UPLINK_TIMEOUT_S):
    """Connect a BTP client; :raises CommandError: (3) unreachable within ``timeout`` s or refused."""
    from twisted.internet.defer import TimeoutError as DeferredTimeout

    from ilptx.errors import ConfigError
    from ilptx.plugins.btp import BtpAuthError, BtpPlugin

    try:
        plugin = BtpPlugin({"server": uplink}, account_id="uplink", reactor=reactor)
    except ConfigError as exc:
        raise CommandError(f"--uplink: {exc.problem}", EXIT_USAGE) from None

    def failed(failure):
        plugin.disconnect()
        if failure.check(BtpAuthError):
            raise CommandError(f"the uplink refused us: {failure.getErrorMessage()}", EXIT_UPLINK)
        if failure.check(DeferredTimeout):
            raise CommandError(f"the uplink {uplink.split('@')[-1]} is unreachable "
                               f"(no BTP connection within {timeout:g} s)", EXIT_UPLINK)
        raise CommandError(f"cannot connect to the uplink: {failure.getErrorMessage()}", EXIT_UPLINK)

    d = plugin.connect()
    d.addTimeout(timeout, reactor)
    return d.addCallbacks(lambda _: plugin, failed)


def _receive(reactor, args) -> "Deferred":
    from twisted.internet import defer, endpoints
    from twisted.web.server import Site

    from ilptx.stream.server import StreamServer
    from ilptx.stream.spsp import SpspServer

    out = sys.stdout

    def on_money(server, connection, stream_id: int, amount: int) -> None:
        if args.json:
            line = json.dumps({"event": "money", "amount": str(amount), "stream": stream_id,
                               "connection": connection.token[:16], "total": str(server.total_received)})
        else:
            line = (f"received {amount} on stream {stream_id} of connection {connection.token[:12]}… "
                    f"(total {server.total_received})")
        out.write(line + "\n")
        out.flush()

    @defer.inlineCallbacks
    def run():
        plugin = yield _connect_uplink(reactor, args.uplink, args.uplink_timeout)
        server = StreamServer(plugin, reactor)
        server.on_money = lambda connection, stream_id, amount: on_money(server, connection, stream_id, amount)
        yield server.connect()
        site = Site(SpspServer(server.generate_address_and_secret).resource())
        endpoint = endpoints.TCP4ServerEndpoint(reactor, args.port, interface=args.host)
        try:
            port = yield endpoint.listen(site)
        except Exception as exc:
            raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc}", EXIT_USAGE) from None
        host = port.getHost()
        if args.json:
            out.write(json.dumps({"event": "ready", "address": server.address, "asset": server.asset_code,
                                  "scale": server.asset_scale, "spsp": f"http://{host.host}:{host.port}/"}) + "\n")
        else:
            out.write(f"receiving at {server.address} ({server.asset_code}, scale {server.asset_scale}); "
                      f"SPSP on http://{host.host}:{host.port}/\n")
        out.flush()
        stopped = defer.Deferred()
        reactor.addSystemEventTrigger("before", "shutdown", lambda: stopped.callback(None) if not stopped.called else None)
        yield stopped
        yield port.stopListening()
        yield plugin.disconnect()

    return run()


def main(argv: Optional[list] = None) -> None:
    """Entry point of the ``ilptx`` console script."""
    args = build_parser().parse_args(argv)
    from twisted.internet import task

    def run(reactor):
        d = _receive(reactor, args)

        def failed(failure):
            failure.trap(CommandError)
            sys.stderr.write(f"ilptx: {failure.value}\n")
            raise SystemExit(failure.value.code)

        return d.addErrback(failed)

    task.react(run)
