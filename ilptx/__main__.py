"""``python -m ilptx`` is the ``ilptx`` command (see :mod:`ilptx.cli`)."""

from ilptx.cli import main

main()
