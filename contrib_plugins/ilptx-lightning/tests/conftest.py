"""Fixtures of the ilptx-lightning tests.

``regtest`` (session-scoped; its tests are marked ``slow``) brings up the real regtest Lightning
network of :mod:`ln_regtest` -- bitcoind (Bitcoin Knots), ElectrumX 1.20.0 and two Electrum 4.3.4
daemons, alice and bob, with an open channel of 0.01 BTC, half of it pushed to bob -- on free
127.0.0.1 ports, in about 20 s, and stops every process by PID at the end of the session. A tool
that is not installed fails the test with the reason (run ``tests/tools/install-regtest.sh``);
nothing is skipped.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ln_regtest  # noqa: E402


@pytest.fixture(scope="session")
def regtest():
    """The running :class:`ln_regtest.RegtestNetwork` (alice and bob with an open channel)."""
    work = Path(tempfile.mkdtemp(prefix="ilptx-lightning-regtest-"))
    try:
        net = ln_regtest.start_network(work)
    except ln_regtest.Missing as exc:
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail(str(exc))
    except RuntimeError as exc:
        pytest.fail(f"the regtest network did not come up (logs in {work}): {exc}")
    try:
        yield net
    finally:
        net.stop()
        shutil.rmtree(work, ignore_errors=True)
