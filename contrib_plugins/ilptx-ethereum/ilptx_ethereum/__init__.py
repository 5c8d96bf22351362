"""ilptx-ethereum: Ethereum payment-channel settlement for ilptx (a contrib distribution).

Wire-compatible with ``ilp-plugin-ethereum`` 3.0.0-beta.20 (machinomy ``Unidirectional``
channels). A third party's package: it uses only ilptx's public API. The ledger plugin is
:mod:`ilptx_ethereum.module` (``EthereumModule``, an ``ISettlementModule``) registered by
:mod:`ilptx_ethereum.hooks` as ``ethereum`` and ``ilp-plugin-ethereum``, in the client role (one
BTP peer) or the server role (one module per client: :mod:`ilptx_ethereum.server`); its parts,
each usable and tested on its own:

* :mod:`ilptx_ethereum.claims`: the claim digest, signing and signer recovery;
* :mod:`ilptx_ethereum.protocol`: the BTP sub-protocol messages (sans-IO);
* :mod:`ilptx_ethereum.checks`: the incoming-claim checks and the credit they allow;
* :mod:`ilptx_ethereum.chain`: the chain client (``IEthereumLedger``) over web3.py;
* :mod:`ilptx_ethereum.options`: the plugin's options (the JS plugin's names and units).
"""

import sys

# eth-account brings py_ecc, which sets the interpreter's recursion limit to 100000 when it is
# first imported. Past what the C stack holds, a deep recursion (json.loads of a peer's deeply
# nested message) then crashes the whole connector instead of raising RecursionError. Import it
# here, once, and put the limit back.
_limit = sys.getrecursionlimit()
import eth_account  # noqa: E402,F401  (imported for the side effect above, undone below)

sys.setrecursionlimit(_limit)
del _limit

from ilptx_ethereum.model import ChannelSnapshot, Claim  # noqa: E402

__version__ = "0.1.0.dev0"

__all__ = ["Claim", "ChannelSnapshot", "__version__"]
