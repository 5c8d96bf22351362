"""A test counterpart of the asym client: one client of ``ilp-plugin-xrp-asym-server`` 1.8.1 as that
server treats it (``_handleCustomData``: ``last_claim``, ``info``, ``channel`` + ``channel_signature`` checked
against the channel's key and the client's ILP address, ``fund_channel`` only once the client's channel holds
``min_drops``), on the symmetric module's claims and ledger code, in a one-account settling plugin that
listens. It is not the asym server plugin: no mini-accounts, one client, no prefunding."""

from __future__ import annotations


from twisted.internet.defer import inlineCallbacks, maybeDeferred

from ilptx.codec.btp import CONTENT_OCTET_STREAM, ProtocolDataEntry
from ilptx.settlement import ClaimRejectedError

from ilptx_xrp_paychan import asym, protocol
from ilptx_xrp_paychan.asym_server import info_response, last_claim_response
from ilptx_xrp_paychan.claims import channel_key
from ilptx_xrp_paychan.module import ChannelNotReadyError, XrpPaychanModule, XrpPaychanPlugin, _drops

CLIENT_ILP_ADDRESS = "test.server.client1"


class FakeAsymServerModule(XrpPaychanModule):
    """The server side for one client (see the module docstring); ``settle_delay`` / ``fund_drops`` of the
    channel it opens to the client are attributes a test may change before ``fund_channel``."""

    name = "fake-asym-server"
    channel_keys_tag = asym.STATELESS_TAG
    min_drops = 1_000_000

    def _sub_protocols(self):
        return ()

    def peer_connected(self):
        return None

    def _check_peer_scale(self):
        return None

    def _learn_incoming(self):
        return None

    def _setup(self):
        raise ChannelNotReadyError("the client has not asked for a channel yet")

    def _announce_outgoing(self):
        return self.plugin.send_entries([ProtocolDataEntry(asym.CHANNEL, CONTENT_OCTET_STREAM,
                                                           bytes.fromhex(self.outgoing["channelId"]))])

    @inlineCallbacks
    def handle(self, message):
        entries = {e.protocol_name: e for e in message.protocol_data}
        if asym.LAST_CLAIM in entries:
            return [last_claim_response((yield self.ctx.best_incoming_claim()))]
        if protocol.INFO in entries:
            return [info_response(self, CLIENT_ILP_ADDRESS)]
        if asym.CHANNEL in entries:
            channel = bytes(entries[asym.CHANNEL].data).hex().upper()
            proof = entries.get(asym.CHANNEL_SIGNATURE)
            if proof is None:
                raise ClaimRejectedError("got channel without signature of channel ownership")
            if self.incoming is not None and self.incoming["channelId"] != channel:
                raise ClaimRejectedError("there is already an existing channel on this account")
            node = yield self.ledger.channel(channel)
            if node is None or not asym.verify_channel_proof(node["PublicKey"], channel, CLIENT_ILP_ADDRESS,
                                                             bytes(proof.data)):
                raise ClaimRejectedError(f"invalid signature for proving channel ownership ({channel})")
            if self.peer_address is None:
                self.peer_address = node["Account"]
                self.key = channel_key(self.options.secret, self.peer_address, self.channel_keys_tag)
            yield self._link_incoming(channel)
        if asym.FUND_CHANNEL in entries:
            if self.incoming_node is None or _drops(self.incoming_node, "Amount") < self.min_drops:
                raise ClaimRejectedError(f"not enough has been escrowed in channel; must put {self.min_drops} drops")
            yield self._ensure_outgoing()
            self.ready = True
            return [ProtocolDataEntry(asym.FUND_CHANNEL, CONTENT_OCTET_STREAM, bytes.fromhex(self.outgoing["channelId"]))]
        return []


class FakeAsymServerPlugin(XrpPaychanPlugin):
    """Whole MESSAGEs with an asym entry go to :meth:`FakeAsymServerModule.handle` (a handler sees all entries)."""

    NAMES = {asym.LAST_CLAIM, protocol.INFO, asym.CHANNEL, asym.FUND_CHANNEL}

    def handle_message(self, message):
        if any(e.protocol_name in self.NAMES for e in message.protocol_data):
            return maybeDeferred(self.module.handle, message).addCallback(tuple)
        return super().handle_message(message)


def fake_server_factory(shared):
    def factory(options, *, account_id, services):
        module = FakeAsymServerModule(options, account_id=account_id, services=services, ledger_factory=shared.client)
        return FakeAsymServerPlugin(options, account_id=account_id, services=services, module=module)
    return factory
