"""ilptx-lightning: Lightning settlement for ilptx (a contrib distribution).

Settles an ILP trustline by paying BOLT11 invoices, with the BTP sub-protocols of
``ilp-plugin-lightning`` 1.0.0-beta.25 (``peeringRequest``, ``paymentRequest``) and an
exact-amount extension (``invoiceRequest``) for nodes that cannot pay amountless invoices. It uses
only ilptx's public API. Its parts, each usable and tested on its own:

* :mod:`ilptx_lightning.module`: ``LightningModule``, the ``ISettlementModule`` (client/peer role),
  registered by :mod:`ilptx_lightning.hooks` as ``lightning`` and ``ilp-plugin-lightning``;
* :mod:`ilptx_lightning.backend`: ``ILightningBackend``, what the plugin needs of a node;
* :mod:`ilptx_lightning.electrum`: the backend on an Electrum daemon's JSON-RPC;
* :mod:`ilptx_lightning.lnd`: the backend on lnd's REST API;
* :mod:`ilptx_lightning.bolt11`: decoding (pyln-proto) and the checks before paying;
* :mod:`ilptx_lightning.protocol`: the BTP sub-protocol entries (sans-IO);
* :mod:`ilptx_lightning.options`: the plugin's options.
"""

__version__ = "0.1.0.dev0"
