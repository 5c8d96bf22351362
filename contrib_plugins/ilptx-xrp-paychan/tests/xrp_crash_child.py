"""One xrp-paychan plugin in a child process, for test_xrp_crash.py: it SIGKILLs itself at one step.

argv[1]: JSON {role: "payer"|"payee", path (SQLite), port, secret, url (rippled), kill_at, pay: [amount, key] | null}.
It dials the test's listener (BTP client). stdout: the log, plus CONNECTED, CREDITED <amount> balance <n>,
PAID / QUEUED, KILLED <where>. SIGTERM disconnects the plugin first (which claims the incoming channel)."""

import json
import os
import signal
import sys

from twisted.internet import defer, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from ilptx.stores.sqlite import SqliteStore
from ilptx.testing import plugin_services

from ilptx_xrp_paychan.module import xrp_paychan_plugin

cfg = json.loads(sys.argv[1])
globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)


def die(where, *args, **kwargs):
    print(f"KILLED {where}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


@defer.inlineCallbacks
def main():
    store = SqliteStore(cfg["path"], reactor=reactor)
    yield store.open()
    plugin = xrp_paychan_plugin({"server": "btp+ws://%s:s@127.0.0.1:%d/" % (cfg["role"], cfg["port"]),
                                 "reconnectIntervals": [100], "responseTimeout": 5000, "channelWatcherInterval": 0,
                                 "xrpServer": cfg["url"], "secret": cfg["secret"], "currencyScale": 9},
                                account_id=cfg["role"], services=plugin_services(reactor, account_id=cfg["role"],
                                                                                 store=store))
    settlement = plugin.settlement

    def credited(amount):
        return store.adjust("balance", -amount).addCallback(
            lambda state: print("CREDITED %d balance %d" % (amount, state.balance), flush=True))

    plugin.register_money_handler(credited)
    plugin.register_data_handler(lambda data: b"")
    if cfg["kill_at"] == "before-record":
        settlement.credits.prepare = lambda *args, **kwargs: die("before recording the credit")
    if cfg["kill_at"] == "after-sign":
        settlement.outgoing_claim.set_if_max = lambda *args: die("after signing, before recording the claim")
    if cfg["kill_at"] == "after-ack":
        send = plugin.send_transfer
        plugin.send_transfer = lambda *args: send(*args).addCallback(
            lambda _: die("after the peer acknowledged the claim, before confirming the payout"))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: plugin.disconnect().addBoth(lambda _: store.close()))
    yield plugin.connect()
    print("CONNECTED", flush=True)
    if cfg["pay"]:
        plugin.send_money(*cfg["pay"]).addCallbacks(lambda _: print("PAID", flush=True),
                                                    lambda f: print("QUEUED", f.getErrorMessage(), flush=True))


reactor.callWhenRunning(main)
reactor.run()
