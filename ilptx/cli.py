"""The ``ilptx`` command: pay a payment pointer, or receive payments at an SPSP endpoint,
through a connector.

::

    ilptx pay '$example.com/bob' 1000000 --uplink btp+ws://user:token@127.0.0.1:7768
    ilptx receive --uplink btp+ws://user:token@127.0.0.1:7768 --port 8080

``pay`` resolves the pointer (RFC 26) or URL, queries SPSP (RFC 9), sends the amount (in the
uplink account's base units) with STREAM, showing progress on stderr, and ends with a summary:
sent, delivered, exchange rate, packets, time (one JSON object with ``--json``). A failure is
one line: what happened, the details, how much was sent and delivered so far. A path out of
liquidity (every packet T04) is retried for ``--liquidity-timeout`` seconds (default 5) of
back-off, then given up.

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
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # twisted is imported when a command runs, not at start-up
    from twisted.internet.defer import Deferred

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
    from ilptx import __version__

    parser = argparse.ArgumentParser(prog="ilptx", description="Send and receive Interledger payments (STREAM, SPSP).")
    parser.add_argument("--version", action="version", version=f"ilptx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    pay = sub.add_parser("pay", help="pay a payment pointer or SPSP URL")
    pay.add_argument("receiver", help="payment pointer ($example.com/bob) or SPSP https URL")
    pay.add_argument("amount", type=int, help="amount in the uplink account's base units")
    pay.add_argument("--uplink", required=True, help="BTP URL of your connector account, btp+ws://user:token@host:port")
    pay.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    pay.add_argument("--allow-http", action="store_true", help="allow a plain http SPSP URL (local testing)")
    pay.add_argument("--uplink-timeout", type=float, default=UPLINK_TIMEOUT_S,
                     help="seconds to wait for the uplink before giving up (default 10)")
    # default: ilptx.stream.sender.DEFAULT_LIQUIDITY_TIMEOUT (not imported here: it loads Twisted)
    pay.add_argument("--liquidity-timeout", type=_seconds, default=None,
                     help="seconds to keep retrying while the path is out of liquidity (T04) "
                          "before giving up (default 5)")
    # default: ilptx.stream.sender.DEFAULT_MAX_IN_FLIGHT (16; not imported here: it loads Twisted)
    pay.add_argument("--max-in-flight", type=_packets, default=None,
                     help="money packets in flight at most (the window's cap; 1 = one at a time, "
                          "as ilp-protocol-stream; default 16)")
    receive = sub.add_parser("receive", help="receive payments at an SPSP endpoint")
    receive.add_argument("--uplink", required=True, help="BTP URL of your connector account, btp+ws://user:token@host:port")
    receive.add_argument("--port", type=int, required=True, help="TCP port of the SPSP endpoint")
    receive.add_argument("--host", default="127.0.0.1", help="interface of the SPSP endpoint (default 127.0.0.1)")
    receive.add_argument("--json", action="store_true", help="one JSON object per line")
    receive.add_argument("--uplink-timeout", type=float, default=UPLINK_TIMEOUT_S,
                         help="seconds to wait for the uplink before giving up (default 10)")
    return parser


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def _packets(text: str) -> int:
    """An argparse type: a whole number of packets >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of packets >= 1, got {text!r}")
    return value


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


def _receive(reactor, args) -> Deferred:
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
        reactor.addSystemEventTrigger("before", "shutdown",
                                      lambda: stopped.callback(None) if not stopped.called else None)
        yield stopped
        yield port.stopListening()
        yield plugin.disconnect()

    return run()


def _pay(reactor, args) -> Deferred:
    from twisted.internet import defer

    from ilptx.stream.sender import StreamPaymentError, send_payment
    from ilptx.stream.spsp import SpspError, query

    if args.amount <= 0:
        raise CommandError("amount: must be a positive integer (base units)", EXIT_USAGE)
    err = sys.stderr
    show_progress = not args.json and err.isatty()
    options = {} if args.liquidity_timeout is None else {"liquidity_timeout": args.liquidity_timeout}
    if args.max_in_flight is not None:
        options["max_in_flight"] = args.max_in_flight

    def progress(sent: int, delivered: int) -> None:
        if show_progress:
            width = 30
            done = int(width * sent / args.amount)
            err.write(f"\r[{'#' * done}{'.' * (width - done)}] {sent}/{args.amount} sent, {delivered} delivered")
            err.flush()

    @defer.inlineCallbacks
    def run():
        try:
            spsp = yield query(args.receiver, allow_http=args.allow_http)
        except SpspError as exc:
            raise CommandError(f"cannot set up the payment: {exc}", EXIT_POINTER) from None
        plugin = yield _connect_uplink(reactor, args.uplink, args.uplink_timeout)
        started = reactor.seconds()
        try:
            result = yield send_payment(plugin, spsp.destination_account, spsp.shared_secret, args.amount,
                                        clock=reactor, progress=progress, **options)
        except StreamPaymentError as exc:
            if show_progress:
                err.write("\n")
            if args.json:
                sys.stdout.write(json.dumps({"ok": False, "error": exc.kind, "code": exc.code, "message": exc.message,
                                             "sent": str(exc.sent), "delivered": str(exc.delivered)}) + "\n")
            raise CommandError(f"payment failed: {_explain(exc)}", EXIT_PAYMENT_FAILED) from None
        finally:
            yield plugin.disconnect()
        seconds = reactor.seconds() - started
        if show_progress:
            err.write("\n")
        rate = "" if result.exchange_rate is None else str(result.exchange_rate)
        if args.json:
            sys.stdout.write(json.dumps({
                "ok": True, "sent": str(result.sent), "delivered": str(result.delivered), "exchangeRate": rate,
                "packets": result.packets, "fulfilled": result.fulfilled, "rejected": result.rejected,
                "seconds": round(seconds, 3), "source": result.source_address,
                "destination": result.destination}) + "\n")
        else:
            sys.stdout.write(
                f"paid {args.receiver}: sent {result.sent}, delivered {result.delivered} "
                f"(exchange rate {rate or 'unknown'}), {result.packets} packets "
                f"({result.fulfilled} fulfilled, {result.rejected} rejected) in {seconds:.2f} s\n")

    return run()


#: error kind → (what happened, what to do); the sender's message says the details
_EXPLANATIONS = {
    "no-route": ("no route to the receiver (F02)", "the connector does not know its address"),
    "too-large": ("the path only carries packets too small for this payment (F08)", ""),
    "liquidity": ("the path is out of liquidity (T04)", "try again later or with a smaller amount"),
    "rate": ("the exchange rate is too low", ""),
    "timeout": ("the receiver or the path did not answer in time", ""),
    "unreachable": ("the uplink went away", ""),
    "rejected": ("the receiver or the path rejected the payment", ""),
}


def _explain(exc) -> str:
    """One line: what happened, the sender's details, how much moved, what to do."""
    head, advice = _EXPLANATIONS.get(exc.kind, (exc.kind, ""))
    line = f"{head}: {exc.message}; sent {exc.sent}, delivered {exc.delivered}"
    return f"{line}; {advice}" if advice else line


def main(argv: Optional[list] = None) -> None:
    """Entry point of the ``ilptx`` console script."""
    args = build_parser().parse_args(argv)
    from twisted.internet import defer, task

    def run(reactor):
        d = defer.maybeDeferred(_pay if args.command == "pay" else _receive, reactor, args)

        def failed(failure):
            failure.trap(CommandError)
            sys.stderr.write(f"ilptx: {failure.value}\n")
            raise SystemExit(failure.value.code)

        return d.addErrback(failed)

    task.react(run)
