"""One ethereum settling plugin in a child process, for test_eth_crash.py: it SIGKILLs itself at one step
(:func:`ilptx.testing_procs.run_crash_child`).

argv[1]: JSON {role: "payer"|"payee", path (SQLite), port, key, url, contract, kill_at, pay: [amount, key] | null}.
The payee dials the test's listener, the payer too (both as BTP clients). stdout: the log, plus CONNECTED,
CREDITED <amount> balance <n>, PAID / QUEUED, KILLED <where>."""

import json
import sys

from ilptx.testing_procs import run_crash_child

from ilptx_ethereum.hooks import ethereum_plugin


def make_plugin(cfg, services):
    return ethereum_plugin({"server": "btp+ws://%s:s@127.0.0.1:%d/" % (cfg["role"], cfg["port"]),
                            "reconnectIntervals": [100], "responseTimeout": 5000, "channelWatcherInterval": 0,
                            "ethereumPrivateKey": cfg["key"], "ethereumProvider": cfg["url"],
                            "contractAddress": cfg["contract"], "outgoingChannelAmount": 2_000_000},
                           account_id=cfg["role"], services=services)


run_crash_child(make_plugin, json.loads(sys.argv[1]))
