"""A role-server ethereum plugin in a child process, for test_eth_server_crash.py: it SIGKILLs itself at one step.

argv[1]: JSON {path (SQLite), port, key, url, contract, kill_at: "before-record" | "after-fulfill" | "",
pay_client: [client, gwei] | null}. stdout: the log, plus CONNECTED <clients loaded>, CREDITED <gwei> alice <n> bob <n>
(the clients' balances in the store after each credit), FULFILLED, KILLED <where>."""

import hashlib
import json
import os
import signal
import sys
from datetime import datetime, timedelta, timezone

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.logger import globalLogBeginner, textFileLogObserver

from ilptx.codec.ilp import Prepare, encode_packet
from ilptx.settlement.tracking import TransferLog
from ilptx.stores.sqlite import SqliteStore
from ilptx.testing import plugin_services

from ilptx_ethereum.hooks import ethereum_plugin

cfg = json.loads(sys.argv[1])
globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
FULFILLMENT = b"\x77" * 32


def die(where, *args, **kwargs):
    print(f"KILLED {where}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if cfg["kill_at"] == "before-record":
    prepare = TransferLog.prepare

    def dying_prepare(self, *args, **kwargs):
        if self.key.endswith(":credits"):
            die("before recording the credit")
        return prepare(self, *args, **kwargs)

    TransferLog.prepare = dying_prepare


@defer.inlineCallbacks
def main():
    store = SqliteStore(cfg["path"], reactor=reactor)
    yield store.open()
    yield store.recover()  # what the connector does at start-up
    plugin = ethereum_plugin({"role": "server", "listener": {"host": "127.0.0.1", "port": cfg["port"]},
                              "debugHostIldcpInfo": {"clientAddress": "test.server", "assetScale": 9,
                                                     "assetCode": "ETH"},
                              "responseTimeout": 5000, "channelWatcherInterval": 0,
                              "ethereumPrivateKey": cfg["key"], "ethereumProvider": cfg["url"],
                              "contractAddress": cfg["contract"], "outgoingChannelAmount": 2_000_000},
                             account_id="clients", services=plugin_services(reactor, account_id="clients",
                                                                            store=store))

    @defer.inlineCallbacks
    def credited(amount):
        alice = yield store.get_balance("clients:alice")
        bob = yield store.get_balance("clients:bob")
        # printed a moment after the money handler returned: the plugin lowers the client's balance after it
        print("CREDITED %d alice %d bob %d" % (amount, alice.balance, bob.balance), flush=True)

    plugin.register_money_handler(lambda amount: reactor.callLater(0.2, credited, amount) and None)
    plugin.register_data_handler(lambda data: b"")
    if cfg["kill_at"] == "after-fulfill":
        plugin._queue_owed_to = lambda client: die("after the Fulfill, before queueing the payout")
    # SIGTERM: stop as twistd would (the plugin, then the store and its thread)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: plugin.disconnect().addBoth(lambda _: store.close()))
    yield plugin.connect()
    print("CONNECTED " + ",".join(sorted(plugin.accounts)), flush=True)
    if cfg["pay_client"]:
        client, amount = cfg["pay_client"]
        while client not in plugin.accounts or plugin.accounts[client].module.peer_address is None:
            yield deferLater(reactor, 0.05, lambda: None)
        prepare = Prepare(amount, datetime.now(timezone.utc) + timedelta(seconds=30),
                          hashlib.sha256(FULFILLMENT).digest(), f"test.server.{client}.x", b"")
        yield plugin.send_data(encode_packet(prepare))
        print("FULFILLED", flush=True)


reactor.callWhenRunning(main)
reactor.run()
