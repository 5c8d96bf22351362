"""The real-reactor tests' helpers (free ports, polling): ilptx's public ones, :mod:`ilptx.testing_procs`."""

from ilptx.testing_procs import free_ports, until  # noqa: F401
