"""STREAM benchmark: one payment of 10^9 units through a running ilptx connector, made by
ilptx's STREAM sender and, in the same run, by ilp-protocol-stream 2.7.1 (the JS reference).

Both pay the same JS receiver (tests/interop/stream_receive.js) through the same
``twistd -n ilpconnector``; the payer's account has ``maxPacketAmount`` so the payment takes
many packets. Packets are counted by the connector (``ilp_connector_incoming_ilp_packets``
of the payer account, from the admin API's /metrics), so both senders are measured alike.

    python bench/stream_bench.py [--amount 1000000000] [--max-packet 100000] [--rounds 3]
                                 [--max-in-flight 16]

Needs ``npm ci`` in tests/interop. The senders take turns (ilptx, then the reference, ``--rounds``
times); it prints one line per payment, then the speed ratio (the reference's seconds over
ilptx's, per round and over all rounds) and a JSON line with everything. Exit status 1 if any
payment did not deliver every unit. A benchmark, not a test: nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INTEROP = REPO / "tests" / "interop"
TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def payer_packets(admin_port: int) -> int:
    """Sum of the payer account's incoming packet counters (any result)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics") as reply:
        text = reply.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("ilp_connector_incoming_ilp_packets{") and 'account="payer"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def children_cpu() -> float:
    """CPU seconds (user + system) of the child processes reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def js_receiver(node: str, uplink: str, amount: int):
    proc = subprocess.Popen([node, str(INTEROP / "stream_receive.js"), "--uplink", uplink, "--expect", str(amount),
                             "--timeout", "600000"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    credentials = json.loads(proc.stdout.readline())
    return proc, credentials


def run_ilptx_sender(payer_uplink: str, destination: str, secret: str, amount: int, max_in_flight: int) -> dict:
    code = f"""
import base64, json, sys, time
from twisted.internet import task, defer
from ilptx.plugins.btp import BtpPlugin
from ilptx.stream.sender import send_payment

@defer.inlineCallbacks
def main(reactor):
    plugin = BtpPlugin({{"server": {payer_uplink!r}}}, account_id="payer", reactor=reactor)
    yield plugin.connect()
    started = time.monotonic()
    result = yield send_payment(plugin, {destination!r}, base64.b64decode({secret!r}), {amount}, clock=reactor,
                                 max_in_flight={max_in_flight})
    elapsed = time.monotonic() - started
    print(json.dumps({{"sent": result.sent, "delivered": result.delivered, "seconds": elapsed}}))
    yield plugin.disconnect()

task.react(main)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise SystemExit(f"ilptx sender failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_js_sender(node: str, payer_uplink: str, destination: str, secret: str, amount: int) -> dict:
    started = time.monotonic()
    out = subprocess.run([node, str(INTEROP / "stream_send.js"), "--uplink", payer_uplink, "--destination",
                          destination, "--secret", secret, "--amount", str(amount), "--timeout", "600000"],
                         capture_output=True, text=True, cwd=REPO)
    elapsed = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"JS sender failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"sent": int(result["sent"]), "delivered": None, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amount", type=int, default=10**9)
    parser.add_argument("--max-packet", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=3, help="ilptx then the reference, this many times")
    parser.add_argument("--max-in-flight", type=int, default=16, help="ilptx's window cap (packets)")
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "ilp-protocol-stream").is_dir():
        raise SystemExit("needs node and `npm ci` in tests/interop")
    shop, payer, admin = free_port(), free_port(), free_port()
    config = {"ilpAddress": "test.bench", "spread": 0, "adminApi": True, "adminApiPort": admin, "accounts": {
        "shop": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                 "rateLimit": {"refillPeriod": 1000, "refillCount": 10**9},
                 "options": {"listener": {"host": "127.0.0.1", "port": shop, "secret": "shop"}}},
        "payer": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                  "maxPacketAmount": str(args.max_packet), "rateLimit": {"refillPeriod": 1000, "refillCount": 10**9},
                  "options": {"listener": {"host": "127.0.0.1", "port": payer, "secret": "payer"}}}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.json"
        path.write_text(json.dumps(config))
        log = open(Path(tmp) / "connector.log", "w")
        connector = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "ilpconnector", "--config", str(path)],
                                     cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(shop)
            wait_port(payer)
            wait_port(admin)
            rounds = []
            for round_number in range(1, args.rounds + 1):
                results = {}
                for name in ("ilptx", "ilp-protocol-stream"):
                    receiver, credentials = js_receiver(node, f"btp+ws://:shop@127.0.0.1:{shop}", args.amount)
                    before = payer_packets(admin)
                    connector_cpu, reaped_cpu = process_cpu(connector.pid), children_cpu()
                    uplink = f"btp+ws://:payer@127.0.0.1:{payer}"
                    if name == "ilptx":
                        outcome = run_ilptx_sender(uplink, credentials["destination"], credentials["secret"],
                                                   args.amount, args.max_in_flight)
                    else:
                        outcome = run_js_sender(node, uplink, credentials["destination"], credentials["secret"],
                                                args.amount)
                    sender_cpu = children_cpu() - reaped_cpu  # the sender has exited and been reaped
                    received = json.loads(receiver.stdout.readline())
                    receiver.wait(30)
                    receiver_cpu = children_cpu() - reaped_cpu - sender_cpu
                    connector_cpu = process_cpu(connector.pid) - connector_cpu
                    packets = payer_packets(admin) - before
                    seconds = outcome["seconds"]
                    results[name] = {"sent": outcome["sent"], "received": int(received["received"]),
                                     "packets": packets, "seconds": round(seconds, 3),
                                     "packets_per_second": round(packets / seconds),
                                     "units_per_second": round(int(received["received"]) / seconds),
                                     # CPU per packet of each process, µs (the receiver's includes its start-up)
                                     "cpu_us_per_packet": {
                                         "sender": round(sender_cpu / packets * 1e6),
                                         "connector": round(connector_cpu / packets * 1e6),
                                         "receiver": round(receiver_cpu / packets * 1e6)}}
                    r = results[name]
                    print(f"round {round_number} {name:>20}: {r['received']} units received in {r['seconds']} s, "
                          f"{packets} packets: {r['packets_per_second']} packets/s, {r['units_per_second']} units/s; "
                          "CPU µs per packet: " + ", ".join(f"{k} {v}" for k, v in r["cpu_us_per_packet"].items()),
                          flush=True)
                ratio = results["ilp-protocol-stream"]["seconds"] / results["ilptx"]["seconds"]
                print(f"round {round_number}: ilptx {ratio:.2f} x as fast as ilp-protocol-stream 2.7.1", flush=True)
                rounds.append(results)
            total = {name: sum(r[name]["seconds"] for r in rounds) for name in ("ilptx", "ilp-protocol-stream")}
            overall = total["ilp-protocol-stream"] / total["ilptx"]
            complete = all(r[name]["received"] == r[name]["sent"] == args.amount for r in rounds for name in r)
            print(f"all rounds: ilptx {overall:.2f} x as fast ({total['ilptx']:.3f} s vs "
                  f"{total['ilp-protocol-stream']:.3f} s); every unit delivered: {complete}")
            print(json.dumps({"amount": args.amount, "maxPacketAmount": args.max_packet,
                              "maxInFlight": args.max_in_flight, "ratio": round(overall, 3),
                              "everyUnitDelivered": complete, "rounds": rounds}))
            if not complete:
                raise SystemExit(1)
        finally:
            connector.send_signal(signal.SIGTERM)
            connector.wait(30)


if __name__ == "__main__":
    main()
