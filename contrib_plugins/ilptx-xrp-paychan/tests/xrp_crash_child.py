"""One xrp-paychan plugin in a child process, for test_xrp_crash.py: it SIGKILLs itself at one step
(:func:`ilptx.testing_procs.run_crash_child`, plus ``after-ack``: the peer acknowledged the claim, the payout
is not confirmed yet).

argv[1]: JSON {role: "payer"|"payee", path (SQLite), port, secret, url (rippled), kill_at, pay: [amount, key] | null}.
It dials the test's listener (BTP client). stdout: the log, plus CONNECTED, CREDITED <amount> balance <n>,
PAID / QUEUED, KILLED <where>. SIGTERM disconnects the plugin first (which claims the incoming channel)."""

import json
import sys

from ilptx.testing_procs import die, run_crash_child

from ilptx_xrp_paychan.module import xrp_paychan_plugin


def make_plugin(cfg, services):
    return xrp_paychan_plugin({"server": "btp+ws://%s:s@127.0.0.1:%d/" % (cfg["role"], cfg["port"]),
                               "reconnectIntervals": [100], "responseTimeout": 5000, "channelWatcherInterval": 0,
                               "xrpServer": cfg["url"], "secret": cfg["secret"], "currencyScale": 9},
                              account_id=cfg["role"], services=services)


def kill_after_ack(plugin, cfg):
    if cfg["kill_at"] == "after-ack":
        send = plugin.send_transfer
        plugin.send_transfer = lambda *args: send(*args).addCallback(
            lambda _: die("after the peer acknowledged the claim, before confirming the payout"))


run_crash_child(make_plugin, json.loads(sys.argv[1]), kill_after_ack)
