"""XRP Ledger payment-channel settlement for ilptx (issue 10), wire-compatible with
``ilp-plugin-xrp-paychan`` 2.4.1 and ``ilp-plugin-xrp-asym-client`` 1.6.0 (the asymmetric
server ``ilp-plugin-xrp-asym-server`` 1.8.1 is not built yet). A third party's package: it uses only ilptx's public API.

* :mod:`ilptx_xrp_paychan.module`: the ``xrp-paychan`` plugin (``XrpPaychanModule`` on the
  settlement framework, ``XrpPaychanPlugin``), registered by :mod:`ilptx_xrp_paychan.hooks` as
  ``xrp-paychan`` and ``ilp-plugin-xrp-paychan``;
* :mod:`ilptx_xrp_paychan.asym_client`: the ``xrp-asym-client`` plugin (the moneyd uplink);
* :mod:`ilptx_xrp_paychan.asym`: the asym sub-protocols, the channel proof, the BTP token;
* :mod:`ilptx_xrp_paychan.claims`: channel keys, claim bytes, signing, units ↔ drops, channel ids;
* :mod:`ilptx_xrp_paychan.protocol`: the BTP sub-protocols (sans-IO);
* :mod:`ilptx_xrp_paychan.options`: the options (the JS plugin's names and defaults);
* :mod:`ilptx_xrp_paychan.rippled`: the client of rippled's WebSocket API.
"""

__version__ = "0.1.0.dev0"
