"""The sub-protocol plumbing of the settling plugin: BtpSession offers each MESSAGE to the plugin's
handle_message first; registered names get their handler's entries back, everything else behaves as plain BTP."""

from __future__ import annotations

import pytest
from ed25519_channel import module_factory
from twisted.internet.defer import maybeDeferred

from ilptx.codec.btp import CONTENT_OCTET_STREAM, CONTENT_TEXT_PLAIN_UTF8, ProtocolDataEntry
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.testing import FakeLedger, failure_of, linked_settling_plugins, result_of


def connected():
    factory = settling_plugin_factory(module_factory(FakeLedger()))
    pair = linked_settling_plugins(factory, options={"seed": "11" * 32}, peer_options={"seed": "22" * 32})
    connecting = [maybeDeferred(pair.plugin.connect), maybeDeferred(pair.peer.connect)]
    pair.settle()
    for d in connecting:
        result_of(d)
    return pair


def test_registered_sub_protocol_answers_with_its_entries():
    """A MESSAGE naming a registered sub-protocol gets exactly the handler's entries as the Response."""
    pair = connected()
    seen = []

    def echo(entry):
        seen.append(entry)
        return [ProtocolDataEntry("echo", CONTENT_TEXT_PLAIN_UTF8, entry.data.upper())]

    pair.peer.settlement.register_sub_protocol("echo", echo)
    d = pair.plugin.settlement.call_peer("echo", b"hello")
    pair.settle()
    assert result_of(d) == (ProtocolDataEntry("echo", CONTENT_TEXT_PLAIN_UTF8, b"HELLO"),)
    assert seen == [ProtocolDataEntry("echo", CONTENT_OCTET_STREAM, b"hello")]


def test_unregistered_sub_protocol_gets_an_empty_response_and_ilp_goes_to_the_data_handler():
    """An unknown sub-protocol is acknowledged empty (as plain BTP); the ilp entry still reaches the data handler."""
    pair = connected()
    pair.peer.register_data_handler(lambda data: b"answer:" + data)
    d = pair.plugin.settlement.call_peer("nobody", b"x")
    pair.settle()
    assert result_of(d) == ()
    d = pair.plugin.send_data(b"packet")
    pair.settle()
    assert result_of(d) == b"answer:packet"


def test_failing_handler_is_answered_f00_and_the_link_stays_up():
    """A sub-protocol handler that raises is answered with a BTP Error F00; the connection stays up."""
    pair = connected()

    def broken(entry):
        raise RuntimeError("module bug")

    pair.peer.settlement.register_sub_protocol("broken", broken)
    d = pair.plugin.settlement.call_peer("broken", b"")
    pair.settle()
    assert failure_of(d).value.btp_error.code == "F00"
    assert pair.plugin.is_connected() and pair.peer.is_connected()


def test_ilp_and_taken_names_cannot_be_registered():
    """register_sub_protocol refuses 'ilp' (the data handler's) and a name already taken."""
    pair = connected()
    with pytest.raises(ValueError, match="data handler"):
        pair.peer.settlement.register_sub_protocol("ilp", lambda entry: [])
    with pytest.raises(ValueError, match="already registered"):
        pair.peer.settlement.register_sub_protocol("claim", lambda entry: [])


def test_whole_message_handler_sees_every_entry_of_the_message():
    """whole_message=True: the handler gets the MESSAGE itself, with the entries that travel with its own."""
    pair = connected()
    seen = []

    def both(message):
        seen.append(tuple(message.protocol_data))
        return [ProtocolDataEntry("pair", CONTENT_OCTET_STREAM, b"".join(e.data for e in message.protocol_data))]

    pair.peer.settlement.register_sub_protocol("pair", both, whole_message=True)
    entries = (ProtocolDataEntry("pair", CONTENT_OCTET_STREAM, b"id"),
               ProtocolDataEntry("pair_signature", CONTENT_OCTET_STREAM, b"sig"))
    d = pair.plugin.settlement._call_peer(entries)
    pair.settle()
    assert result_of(d) == (ProtocolDataEntry("pair", CONTENT_OCTET_STREAM, b"idsig"),)
    assert seen == [entries]
