"""The stream-receiver plugin: options, and Prepares answered in process."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from ilptx.codec.ilp import Reject, decode_response, encode_packet, Prepare
from ilptx.errors import ConfigError
from ilptx.interfaces import ILedgerPlugin
from ilptx.plugins.stream_receiver import StreamReceiverPlugin
from datetime import datetime, timezone


@pytest.mark.parametrize("options, key", [
    ({"spsp": "8080"}, "accounts.shop.options.spsp"),
    ({"serverSecret": "c2hvcnQ="}, "accounts.shop.options.serverSecret"),
    ({"serverSecret": "not base64!"}, "accounts.shop.options.serverSecret"),
    ({"receiveMax": 5}, "accounts.shop.options.receiveMax"),
])
def test_bad_options_name_the_key(options, key):
    """Each bad option stops start-up naming it."""
    with pytest.raises(ConfigError) as info:
        StreamReceiverPlugin(options, account_id="shop", reactor=Clock())
    assert info.value.key == key


def test_answers_prepares_in_process_once_it_knows_its_address():
    """It is an ILedgerPlugin; a Prepare to a token it did not make is F02 from its address."""
    plugin = StreamReceiverPlugin({}, account_id="shop", reactor=Clock())
    verifyObject(ILedgerPlugin, plugin)
    plugin.set_account_address("test.c.shop", "USD", 9)
    plugin.connect()
    assert plugin.is_connected()
    assert plugin.server.generate_address_and_secret().destination_account.startswith("test.c.shop.")
    out = []
    plugin.send_data(encode_packet(Prepare(1, datetime(2030, 1, 1, tzinfo=timezone.utc), b"\x00" * 32,
                                           "test.c.shop.nottoken", b""))).addCallback(out.append)
    reply = decode_response(out[0])
    assert isinstance(reply, Reject) and reply.code == "F02" and reply.triggered_by == "test.c.shop"
