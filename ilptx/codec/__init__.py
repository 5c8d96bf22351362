"""Sans-IO codecs for the Interledger wire formats: OER (RFC 30), ILPv4 (RFC 27), ILP
addresses (RFC 15), BTP 2.0 (RFC 23) and IL-DCP (RFC 31).

Nothing in this package imports an I/O framework or reads a clock; see
``tests/test_layers.py``.
"""
