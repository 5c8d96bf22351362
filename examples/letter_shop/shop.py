"""The letter shop (the hosted-ledger tutorial, on ilptx): sells the letters of a text, one per payment.

The shop hosts the ledger: it runs a BTP listener for its customer (an asymmetric trustline
that only the shop keeps the books of), answers the customer's IL-DCP request with the
address ``test.shop.customer``, and runs a STREAM receiver at ``test.shop``. Each fulfilled
payment of ``--price`` units returns the next letter of the text to the customer, inside the
STREAM reply; the shop prints what the customer owes.

    python examples/letter_shop/shop.py [--port 7790] [--spsp-port 7791] [--secret shop_secret] [--price 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twisted.internet import defer, endpoints, task
from twisted.web.server import Site

from ilptx.codec.ildcp import ILDCP_DESTINATION, IldcpResponse, response_fulfill
from ilptx.codec.ilp import Reject, decode_prepare, encode_packet
from ilptx.plugins.btp import BtpPlugin
from ilptx.stream.server import StreamServer
from ilptx.stream.spsp import SpspServer

ADDRESS, CUSTOMER, ASSET, SCALE = "test.shop", "test.shop.customer", "LTR", 0
TEXT = (Path(__file__).parent / "text.txt").read_text(encoding="utf-8").strip()


def main(reactor, args):
    cursor = {"next": 0, "owed": 0}

    def next_letter(connection, stream_id, amount):
        """One letter per ``price`` units paid."""
        letters = ""
        for _ in range(amount // args.price):
            letters += TEXT[cursor["next"] % len(TEXT)]
            cursor["next"] += 1
        return letters.encode("utf-8")

    def on_money(connection, stream_id, amount):
        cursor["owed"] += amount
        print(f"sold {amount // args.price} letter(s); the customer owes {cursor['owed']} {ASSET}", flush=True)

    plugin = BtpPlugin({"listener": {"host": "127.0.0.1", "port": args.port, "secret": args.secret}},
                       account_id="customer", reactor=reactor)
    server = StreamServer(plugin, reactor, on_money=on_money, respond_with=next_letter)
    server.configure(ADDRESS, ASSET, SCALE)

    def handle(data: bytes) -> bytes:
        prepare = decode_prepare(data)
        if prepare.destination == ILDCP_DESTINATION:  # the shop is its customer's parent
            return encode_packet(response_fulfill(IldcpResponse(CUSTOMER, SCALE, ASSET)))
        if prepare.destination.startswith(ADDRESS + ".") and not prepare.destination.startswith(CUSTOMER):
            return server.handle_data(data)
        return encode_packet(Reject("F02", ADDRESS, "the shop only sells letters", b""))

    plugin.register_data_handler(handle)
    plugin.register_money_handler(lambda amount: None)

    @defer.inlineCallbacks
    def run():
        yield plugin.connect()
        spsp = endpoints.TCP4ServerEndpoint(reactor, args.spsp_port, interface="127.0.0.1")
        yield spsp.listen(Site(SpspServer(server.generate_address_and_secret).resource()))
        print(f"letter shop open: BTP on 127.0.0.1:{args.port}, SPSP on http://127.0.0.1:{args.spsp_port}/, "
              f"{args.price} {ASSET} per letter", flush=True)
        yield defer.Deferred()  # until SIGINT/SIGTERM

    return run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7790)
    parser.add_argument("--spsp-port", type=int, default=7791)
    parser.add_argument("--secret", default="shop_secret")
    parser.add_argument("--price", type=int, default=1)
    arguments = parser.parse_args()
    if arguments.price < 1:
        sys.exit("--price: must be at least 1")
    task.react(main, [arguments])
