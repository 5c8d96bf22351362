"""Run the rippled double as its own process (for tests whose other processes need a ledger):

    PYTHONPATH=contrib_plugins/ilptx-xrp-paychan/tests python -m rippled_double \\
        [--port 0] [--close-interval SECONDS] [--fund rADDRESS=DROPS ...]

Like a new stand-alone rippled, the genesis account (``GENESIS_ADDRESS``, seed ``GENESIS_SEED``)
holds 100 billion XRP; ``--fund`` adds genesis allocations. Prints one line
``rippled double listening on ws://127.0.0.1:<port>`` once it listens; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import reactor

from .ledger import GENESIS_ADDRESS, GENESIS_DROPS, Ledger
from .server import RippledDouble


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m rippled_double", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--close-interval", type=float, default=None, help="close a ledger every SECONDS")
    parser.add_argument("--fund", action="append", default=[], metavar="rADDRESS=DROPS")
    args = parser.parse_args(argv)
    genesis = {GENESIS_ADDRESS: GENESIS_DROPS}
    for item in args.fund:
        address, _, drops = item.partition("=")
        if not drops.isdigit():
            parser.error(f"--fund {item}: expected rADDRESS=DROPS")
        genesis[address] = genesis.get(address, 0) + int(drops)
    double = RippledDouble(Ledger(reactor.seconds, genesis), reactor, close_interval=args.close_interval)
    port = reactor.listenTCP(args.port, double, interface="127.0.0.1")
    print(f"rippled double listening on ws://127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
