"""XRP Ledger payment-channel settlement for ilptx (issue 10), wire-compatible with
``ilp-plugin-xrp-paychan`` 2.4.1 (the asymmetric ``ilp-plugin-xrp-asym-server`` 1.8.1 /
``-client`` 1.6.0 are not built yet). A third party's package: it uses only ilptx's public API.

* :mod:`ilptx_xrp_paychan.module`: the ``xrp-paychan`` plugin (``XrpPaychanModule`` on the
  settlement framework, ``XrpPaychanPlugin``), registered by :mod:`ilptx_xrp_paychan.hooks` as
  ``xrp-paychan`` and ``ilp-plugin-xrp-paychan``;
* :mod:`ilptx_xrp_paychan.claims`: channel keys, claim bytes, signing, units ↔ drops, channel ids;
* :mod:`ilptx_xrp_paychan.protocol`: the BTP sub-protocols (sans-IO);
* :mod:`ilptx_xrp_paychan.options`: the options (the JS plugin's names and defaults);
* :mod:`ilptx_xrp_paychan.rippled`: the client of rippled's WebSocket API.
"""

__version__ = "0.1.0.dev0"
