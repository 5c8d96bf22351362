"""pytest set-up for the interop suite (real processes: our connector, Node.js)."""


def pytest_configure(config):
    """Register the ``interop`` marker, so ``-m interop`` / ``-m "not interop"`` select these tests."""
    config.addinivalue_line(
        "markers",
        "interop: runs real connector and Node.js processes on 127.0.0.1 "
        "(needs `npm ci` in tests/interop); part of the normal suite",
    )
