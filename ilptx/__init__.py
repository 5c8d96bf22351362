"""ilptx: an Interledger (ILPv4) connector on Twisted."""

__version__ = "0.1.0"
