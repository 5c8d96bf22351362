"""The two values every module here shares: a signed :class:`Claim` and a :class:`ChannelSnapshot`.

Amounts are ``int`` wei (scale 18); dispute periods and block heights are ``int`` blocks.
Addresses are ``0x`` hex strings kept as given (comparisons are case-insensitive, as in the
JS plugin); channel ids are ``0x`` + 64 hex digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Claim", "ChannelSnapshot"]


@dataclass(frozen=True)
class Claim:
    """A machinomy payment-channel claim, as the ``machinomy`` sub-protocol carries it.

    :ivar channel_id: ``0x`` + 64 hex digits.
    :ivar signature: ``0x`` + r‖s‖v (65 bytes, v ``1b``/``1c``), over the claim digest.
    :ivar value: ``int`` wei >= 0, the **cumulative** total the sender owes on this channel.
    :ivar contract_address: the ``Unidirectional`` contract the claim is for.
    :ivar token_contract: the ERC-20 token of a ``TokenUnidirectional`` channel, else ``None``.
    """

    channel_id: str
    signature: str
    value: int
    contract_address: str
    token_contract: Optional[str] = None


@dataclass(frozen=True)
class ChannelSnapshot:
    """A channel as the contract's ``channels(bytes32)`` returns it, at one moment.

    :ivar channel_id: ``0x`` + 64 hex digits.
    :ivar contract_address: the contract holding the channel.
    :ivar sender: who opened and funds the channel (signs the claims).
    :ivar receiver: who may claim it.
    :ivar value: ``int`` wei deposited and not yet paid out.
    :ivar settling_period: ``int`` blocks between ``startSettling`` and ``settle`` (the dispute period).
    :ivar settling_until: ``int`` block from which ``settle`` works, or ``None`` when the sender
        has not started settling (the contract's 0).
    :ivar token_contract: the ERC-20 token of a ``TokenUnidirectional`` channel, else ``None``.
    """

    channel_id: str
    contract_address: str
    sender: str
    receiver: str
    value: int
    settling_period: int
    settling_until: Optional[int] = None
    token_contract: Optional[str] = None

    @property
    def is_settling(self) -> bool:
        """``True`` once the sender called ``startSettling`` (the JS plugin's ``isDisputed``)."""
        return self.settling_until is not None
