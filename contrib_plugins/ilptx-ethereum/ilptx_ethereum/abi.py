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

__all__ = ["UNIDIRECTIONAL_ABI"]


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
