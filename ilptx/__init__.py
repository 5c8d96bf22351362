"""ilptx: an Interledger (ILPv4) connector on Twisted."""

#: the version (setup.cfg reads it: ``version = attr: ilptx.__version__``)
__version__ = "0.1.0"
