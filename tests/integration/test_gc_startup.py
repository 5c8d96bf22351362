"""A real ``twistd -n ilpconnector`` freezes the collector once start-up is done; ILPTX_GC_THRESHOLDS overrides."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from integration.procs import REPO, TWISTD, assert_clean_twistd_stop, free_ports, wait_for_port

pytestmark = pytest.mark.integration


def accounts(port):
    return json.dumps({"solo": {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
                                "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": "s"}}}})


def test_gc_is_frozen_after_the_connector_is_ready(processes):
    """The gc step logs the freeze and the overridden thresholds after 'ready', once."""
    (port,) = free_ports(1)
    connector = processes.connector([], env={"CONNECTOR_ACCOUNTS": accounts(port), "CONNECTOR_ILP_ADDRESS": "test.gc",
                                             "ILPTX_GC_THRESHOLDS": "1000,5,7"})
    wait_for_port(port, connector)
    deadline = time.monotonic() + 20
    while "gc: start-up frozen" not in connector.full_output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_clean_twistd_stop(connector.stop(), signal.SIGTERM, connector)
    out = connector.full_output()
    assert out.count("gc: start-up frozen (") == 1, connector.output()
    assert "thresholds (1000, 5, 7)" in out
    assert out.index("ilptx connector test.gc ready") < out.index("gc: start-up frozen")


def test_bad_gc_thresholds_stop_start_up_with_one_line():
    """ILPTX_GC_THRESHOLDS=junk: one config-error line naming the variable, exit status 2, no traceback."""
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "ILPTX_"))}
    result = subprocess.run(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector"], cwd=REPO, capture_output=True,
                            text=True, timeout=60,
                            env={**env, "CONNECTOR_ACCOUNTS": accounts(port), "CONNECTOR_ILP_ADDRESS": "test.gc",
                                 "ILPTX_GC_THRESHOLDS": "lots"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "ilpconnector: config error: ILPTX_GC_THRESHOLDS: must be three integers >= 0 like 50000,20,100, not 'lots'"]
