"""The interface of machinomy's ``Unidirectional`` channel contract (Solidity ^0.4.24), as the
JSON ABI web3.py reads: the functions and events ilptx-ethereum uses, written from their
signatures (the testnet/custom-chain variant ``ilp-plugin-ethereum`` 3.0.0-beta.20 uses off
mainnet: ``uint256 settlingPeriod``).

=========================================================  =====================================
``open(bytes32 channelId, address receiver, uint256 settlingPeriod)`` payable  sender opens, msg.value deposited
``deposit(bytes32 channelId)`` payable                                  sender adds msg.value
``claim(bytes32 channelId, uint256 payment, bytes signature)``          receiver takes min(payment, value),
                                                                        the rest back to the sender; channel deleted
``startSettling(bytes32 channelId)``                                    sender: settlingUntil = block + settlingPeriod
``settle(bytes32 channelId)``                                           from settlingUntil on: all back to the sender
``channels(bytes32) → (sender, receiver, value, settlingPeriod, settlingUntil)``  view
``paymentDigest(bytes32 channelId, uint256 payment) → bytes32``         view, the unprefixed claim digest
=========================================================  =====================================

Events: ``DidOpen(bytes32 indexed channelId, address indexed sender, address indexed receiver,
uint256 value)``, ``DidDeposit(bytes32 indexed channelId, uint256 deposit)``, ``DidClaim``,
``DidStartSettling``, ``DidSettle`` (each ``bytes32 indexed channelId``).
"""

from __future__ import annotations

__all__ = ["UNIDIRECTIONAL_ABI", "KNOWN_CONTRACTS", "resolve_contract_address"]

#: The ``Unidirectional`` deployments ``ilp-plugin-ethereum`` 3.0.0-beta.20 has built in
#: (``src/utils/channel.ts`` ``UNIDIRECTIONAL_METADATA``), by chain id: Ropsten, Rinkeby, Kovan
#: use this ABI. Mainnet (1, ``0x08e4f70109ccc5135f50cc359d24cb7686247df4``) uses another one
#: (``uint32 settlingPeriod``, so other function selectors) and is not supported here yet.
KNOWN_CONTRACTS = {
    3: "0x8ffdea290f4dcdc553841a432e56aa26c91ab777",
    4: "0x71ed284ea8e26e14b8f2d9b98ce4eff5a1f25120",
    42: "0x481029bf134710832f5b9debdd10275fb7816f59",
}
_MAINNET = 1


def resolve_contract_address(chain_id: int, configured: str | None) -> str:
    """The contract to use on ``chain_id``, as the JS plugin's ``getContract`` picks it: the built-in
    deployment on chains 3, 4 and 42 (even when ``contractAddress`` is configured), else the
    configured ``contractAddress``.

    :raises ValueError: mainnet (its contract has another ABI: not supported yet), or another
        chain without ``contractAddress`` ("Machinomy is not supported on the current Ethereum
        chain", as the JS plugin says).
    """
    if chain_id == _MAINNET:
        raise ValueError("chain 1 (mainnet) is not supported yet: its Unidirectional contract has another ABI "
                         "(uint32 settlingPeriod)")
    if chain_id in KNOWN_CONTRACTS:
        return KNOWN_CONTRACTS[chain_id]
    if not configured:
        raise ValueError(f"contractAddress: Machinomy is not supported on Ethereum chain {chain_id} "
                         "without a configured contract address")
    return configured


def _params(spec: str, indexed: bool = False) -> list[dict]:
    """``"bytes32 channelId, uint256 value"`` → ABI inputs; a leading ``indexed`` is honoured."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        words = part.split()
        item = {"type": words[0], "name": words[-1] if len(words) > 1 and words[-1] != "indexed" else ""}
        if indexed:
            item["indexed"] = "indexed" in words[1:]
        out.append(item)
    return out


def _function(name: str, inputs: str, outputs: str = "", mutability: str = "nonpayable") -> dict:
    return {"type": "function", "name": name, "inputs": _params(inputs), "outputs": _params(outputs),
            "stateMutability": mutability}


def _event(name: str, inputs: str) -> dict:
    return {"type": "event", "name": name, "inputs": _params(inputs, indexed=True), "anonymous": False}


UNIDIRECTIONAL_ABI: list[dict] = [
    _function("open", "bytes32 channelId, address receiver, uint256 settlingPeriod", mutability="payable"),
    _function("deposit", "bytes32 channelId", mutability="payable"),
    _function("claim", "bytes32 channelId, uint256 payment, bytes signature"),
    _function("startSettling", "bytes32 channelId"),
    _function("settle", "bytes32 channelId"),
    _function("channels", "bytes32",
              "address sender, address receiver, uint256 value, uint256 settlingPeriod, uint256 settlingUntil", "view"),
    _function("paymentDigest", "bytes32 channelId, uint256 payment", "bytes32", "view"),
    _event("DidOpen", "bytes32 indexed channelId, address indexed sender, address indexed receiver, uint256 value"),
    _event("DidDeposit", "bytes32 indexed channelId, uint256 deposit"),
    _event("DidClaim", "bytes32 indexed channelId"),
    _event("DidStartSettling", "bytes32 indexed channelId"),
    _event("DidSettle", "bytes32 indexed channelId"),
]
