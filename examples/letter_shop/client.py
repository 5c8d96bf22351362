"""The letter shop's customer: buys letters one payment at a time and prints them as they come.

    python examples/letter_shop/client.py [--letters 40] [--pace 100] [--shop btp+ws://:shop_secret@127.0.0.1:7790]
                                          [--spsp http://127.0.0.1:7791/] [--price 1]

``--pace`` is the time between letters in ms, from 1000 down to 10.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import defer, task

from ilptx.plugins.btp import BtpPlugin
from ilptx.stream.sender import send_payment
from ilptx.stream.spsp import query


def main(reactor, args):
    plugin = BtpPlugin({"server": args.shop}, account_id="shop", reactor=reactor)
    bought = []

    def got(stream_id, data: bytes) -> None:
        letters = data.decode("utf-8")
        bought.append(letters)
        sys.stdout.write(letters)
        sys.stdout.flush()

    @defer.inlineCallbacks
    def run():
        yield plugin.connect()
        paid = 0
        for _ in range(args.letters):
            credentials = yield query(args.spsp, allow_http=True)
            result = yield send_payment(plugin, credentials.destination_account, credentials.shared_secret,
                                        args.price, clock=reactor, on_data=got)
            paid += result.sent
            yield task.deferLater(reactor, args.pace / 1000.0, lambda: None)
        sys.stdout.write(f"\nbought {len(''.join(bought))} letters for {paid} units\n")
        yield plugin.disconnect()

    return run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", default="btp+ws://:shop_secret@127.0.0.1:7790")
    parser.add_argument("--spsp", default="http://127.0.0.1:7791/")
    parser.add_argument("--letters", type=int, default=40)
    parser.add_argument("--pace", type=int, default=100, help="ms between letters, 10..1000")
    parser.add_argument("--price", type=int, default=1)
    arguments = parser.parse_args()
    if not 10 <= arguments.pace <= 1000:
        sys.exit("--pace: must be between 10 and 1000 ms")
    task.react(main, [arguments])
