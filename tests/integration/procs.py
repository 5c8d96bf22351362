"""Helpers for tests that run real processes: twistd connectors, node scripts, free ports.

Imported as ``integration.procs`` (``tests/conftest.py`` puts ``tests/`` on ``sys.path``). The generic part
(processes, ports, twistd) is :mod:`ilptx.testing_procs`, public for plugin authors; what is here is ilptx's own.
"""

from __future__ import annotations

import signal
from pathlib import Path

from ilptx.testing_procs import (  # noqa: F401  (re-exported: the helpers ilptx's tests share with plugin authors)
    TWISTD,
    TWISTD_CLEAN_SHUTDOWN,
    Process,
    assert_clean_twistd_stop,
    free_port,
    free_ports,
    twistd_connector,
    wait_for_port,
)

REPO = Path(__file__).resolve().parents[2]


def start_either_connector(kind: str, config: dict, directory: Path, processes) -> "Process":
    """Start ``twistd -n ilpconnector`` (``kind="ilptx"``) or the JS reference connector
    (``kind="reference"``, ilp-connector 23.0.2 from tests/interop) on the same config.

    :param processes: the ``processes`` fixture (kills them at teardown).
    """
    import json
    import shutil

    if kind == "ilptx":
        path = Path(directory) / "ilptx.json"
        path.write_text(json.dumps(config))
        return processes.connector(["--config", str(path)])
    node = shutil.which("node")
    assert node is not None, "the reference connector needs node"
    path = Path(directory) / "reference.json"
    path.write_text(json.dumps({"store": "memory", **config}))
    return processes.run([node, str(REPO / "tests" / "interop" / "run_reference_connector.js"), "--config", str(path)])


def stop_either_connector(kind: str, process: "Process") -> None:
    """Stop it and check it stopped cleanly (twistd: 0 or -SIGTERM with its shutdown line; node: 0)."""
    status = process.stop()
    if kind == "ilptx":
        assert_clean_twistd_stop(status, signal.SIGTERM, process)
    else:
        assert status == 0, process.output()
