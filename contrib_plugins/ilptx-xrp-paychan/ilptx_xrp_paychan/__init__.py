"""XRP Ledger payment-channel settlement for ilptx (issue 10), to be wire-compatible with
``ilp-plugin-xrp-paychan`` 2.4.1, ``ilp-plugin-xrp-asym-server`` 1.8.1 and
``ilp-plugin-xrp-asym-client`` 1.6.0.

So far: :mod:`ilptx_xrp_paychan.rippled`, the client of rippled's WebSocket API that the
plugins will run on. The plugins themselves are not here yet.
"""
