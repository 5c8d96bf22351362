"""CCP (route broadcasting) codec: reference byte fixtures, round trips, hostile input, encode errors.

The fixtures in ``fixtures/ccp/ccp_fixtures.json`` were written by ilp-protocol-ccp 1.2.3
through ``tests/interop/make_ccp_fixtures.js`` (regenerate: ``node
tests/interop/make_ccp_fixtures.js > tests/unit/codec/fixtures/ccp/ccp_fixtures.json``). Each case
has the values given to the reference serializer (``input``), its bytes (``hex``) and what its
deserializer reads back (``decoded``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec_strategies as cs
from ilptx.codec import ccp, ilp
from ilptx.codec.ccp import Route, RouteControlRequest, RouteProp, RouteUpdateRequest
from ilptx.codec.oer import DecodeError, EncodeError

UTC = timezone.utc
FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "ccp" / "ccp_fixtures.json").read_text(encoding="utf-8"))
CONTROL_CASES = {case["name"]: case for case in FIXTURES["control"]}
UPDATE_CASES = {case["name"]: case for case in FIXTURES["update"]}

TABLE_ID = uuid.UUID("3b9ea6a8-0d1e-4c2f-9a56-7e2b1f4c8d90").bytes
AUTH = bytes(range(32))


# -- fixture values -> our values ---------------------------------------------------------------

def control_from_json(j: dict) -> RouteControlRequest:
    """A fixture's route control request as our value."""
    return RouteControlRequest(
        mode=j["mode"],
        last_known_routing_table_id=uuid.UUID(j["lastKnownRoutingTableId"]).bytes,
        last_known_epoch=j["lastKnownEpoch"],
        features=tuple(j["features"]),
    )


def prop_from_json(j: dict) -> RouteProp:
    """A fixture's route prop as our value."""
    return RouteProp(j["isOptional"], j["isTransitive"], j["isPartial"], j["id"], j["isUtf8"], bytes.fromhex(j["valueHex"]))


def update_from_json(j: dict) -> RouteUpdateRequest:
    """A fixture's route update request as our value."""
    return RouteUpdateRequest(
        routing_table_id=uuid.UUID(j["routingTableId"]).bytes,
        current_epoch_index=j["currentEpochIndex"],
        from_epoch_index=j["fromEpochIndex"],
        to_epoch_index=j["toEpochIndex"],
        hold_down_time=j["holdDownTime"],
        speaker=j["speaker"],
        new_routes=tuple(
            Route(r["prefix"], tuple(r["path"]), bytes.fromhex(r["authHex"]), tuple(prop_from_json(p) for p in r["props"]))
            for r in j["newRoutes"]
        ),
        withdrawn_routes=tuple(j["withdrawnRoutes"]),
    )


def canonical_prop(p: RouteProp) -> RouteProp:
    """``p`` with its flags as the reference writes them (non-optional => transitive, not partial)."""
    transitive = p.is_transitive if p.is_optional else True
    partial = p.is_partial and p.is_optional and p.is_transitive
    return RouteProp(p.is_optional, transitive, partial, p.id, p.is_utf8, p.value)


def canonical_update(u: RouteUpdateRequest) -> RouteUpdateRequest:
    """``u`` as decoding its encoding gives it back: tuples, canonical prop flags."""
    routes = tuple(
        Route(r.prefix, tuple(r.path), r.auth, tuple(canonical_prop(p) for p in r.props)) for r in u.new_routes
    )
    return RouteUpdateRequest(
        u.routing_table_id, u.current_epoch_index, u.from_epoch_index, u.to_epoch_index, u.hold_down_time,
        u.speaker, routes, tuple(u.withdrawn_routes),
    )


# -- fixtures ---------------------------------------------------------------------------------------

def test_fixtures_come_from_the_pinned_reference():
    """The fixture file was made by ilp-protocol-ccp 1.2.3 and holds every case the tests rely on."""
    assert FIXTURES["package"] == "ilp-protocol-ccp@1.2.3"
    assert FIXTURES["generator"] == "tests/interop/make_ccp_fixtures.js"
    assert {"idle-nil", "sync-nil", "idle-features", "sync-features", "sync-many-features"} <= set(CONTROL_CASES)
    assert {"empty", "new-routes", "withdrawn", "prop-flags", "long-strings", "long-lists"} <= set(UPDATE_CASES)


@pytest.mark.parametrize("name", sorted(CONTROL_CASES))
def test_control_fixture_decodes_to_reference_values(name):
    """decode_route_control(reference bytes) equals what the reference reads from them."""
    case = CONTROL_CASES[name]
    assert ccp.decode_route_control(bytes.fromhex(case["hex"])) == control_from_json(case["decoded"])


@pytest.mark.parametrize("name", sorted(CONTROL_CASES))
def test_control_fixture_encodes_to_reference_bytes(name):
    """encode_route_control(values) gives the reference's bytes, byte for byte."""
    case = CONTROL_CASES[name]
    raw = bytes.fromhex(case["hex"])
    assert ccp.encode_route_control(control_from_json(case["input"])) == raw
    assert ccp.encode_route_control(control_from_json(case["decoded"])) == raw


@pytest.mark.parametrize("name", sorted(UPDATE_CASES))
def test_update_fixture_decodes_to_reference_values(name):
    """decode_route_update(reference bytes) equals what the reference reads from them."""
    case = UPDATE_CASES[name]
    assert ccp.decode_route_update(bytes.fromhex(case["hex"])) == update_from_json(case["decoded"])


@pytest.mark.parametrize("name", sorted(UPDATE_CASES))
def test_update_fixture_encodes_to_reference_bytes(name):
    """encode_route_update of the reference's input (and of its decoded values) gives its bytes."""
    case = UPDATE_CASES[name]
    raw = bytes.fromhex(case["hex"])
    assert ccp.encode_route_update(update_from_json(case["input"])) == raw
    assert ccp.encode_route_update(update_from_json(case["decoded"])) == raw


def test_control_layout_by_hand():
    """A SYNC request is mode, 16 raw id bytes, UInt32 epoch, VarUInt feature count (01 00 when empty)."""
    raw = bytes.fromhex(CONTROL_CASES["sync-known"]["hex"])
    assert raw == b"\x01" + TABLE_ID + (52).to_bytes(4, "big") + bytes.fromhex("0100")
    raw = bytes.fromhex(CONTROL_CASES["idle-features"]["hex"])
    assert raw[21:] == bytes.fromhex("0102") + b"\x03foo" + b"\x08" + "bär ✓".encode()


def test_update_layout_by_hand():
    """An update is 16 id bytes, four UInt32, the speaker, then VarUInt-counted routes and withdrawals."""
    raw = bytes.fromhex(UPDATE_CASES["heartbeat"]["hex"])
    assert raw == (
        TABLE_ID + bytes.fromhex("00000007 00000007 00000007 0000afc8") + b"\x11g.connector.alice" + bytes.fromhex("0100 0100")
    )
    raw = bytes.fromhex(UPDATE_CASES["new-routes"]["hex"])
    auth = bytes((4 * 31 + i * 7) & 0xFF for i in range(32))  # the fixture script's auth(4)
    carol = b"\x0atest.carol" + bytes.fromhex("0102") + b"\x0atest.alice" + b"\x0atest.carol" + auth
    prop = bytes.fromhex("0101" "d0" "0001" "05") + b"hello"  # one prop: optional|transitive|utf8, id 1
    assert raw.endswith(carol + prop + bytes.fromhex("0100"))  # last route, then no withdrawn routes


def test_long_forms_in_fixtures():
    """Long lists carry multi-byte VarUInt counts; long strings carry long-form length prefixes."""
    raw = bytes.fromhex(UPDATE_CASES["long-strings"]["hex"])
    assert raw[32:35] == bytes.fromhex("8203ff")  # 1023-byte speaker
    assert raw[35 + 1023:35 + 1023 + 4] == bytes.fromhex("0101 81c8")  # one route; 200-byte prefix
    raw = bytes.fromhex(UPDATE_CASES["long-lists"]["hex"])
    assert raw[32:42] == b"\x09test.many"
    assert raw[42:44] == bytes.fromhex("0182")  # 130 new routes
    assert bytes.fromhex("02012c") + b"\x07test.w0" in raw  # 300 withdrawn routes
    raw = bytes.fromhex(CONTROL_CASES["sync-many-features"]["hex"])
    assert raw[21:24] == bytes.fromhex("02012c") and bytes.fromhex("81c8") + b"x" * 200 in raw


# Flags byte the reference writes for (optional, transitive, partial), utf8 adds 0x10.
REFERENCE_FLAGS = {
    (False, False, False): 0x40, (False, False, True): 0x40, (False, True, False): 0x40, (False, True, True): 0x40,
    (True, False, False): 0x80, (True, False, True): 0x80, (True, True, False): 0xC0, (True, True, True): 0xE0,
}


def test_prop_flags_match_reference_for_every_combination():
    """Each of the 16 flag combinations is written with the reference's (normalized) flags byte."""
    case = UPDATE_CASES["prop-flags"]
    route = update_from_json(case["input"]).new_routes[0]
    assert len(route.props) == 16
    for prop in route.props:
        single = RouteUpdateRequest(TABLE_ID, 0, 0, 0, 0, "test.a", (Route("test.b", (), AUTH, (prop,)),))
        raw = ccp.encode_route_update(single)
        prop_bytes = raw[-(4 + len(prop.value) + 2):-2]  # flags, id, length, value; then "01 00"
        expected = REFERENCE_FLAGS[prop.is_optional, prop.is_transitive, prop.is_partial] | (0x10 if prop.is_utf8 else 0)
        assert prop_bytes[0] == expected
        assert ccp.decode_route_update(raw).new_routes[0].props == (canonical_prop(prop),)
    assert update_from_json(case["decoded"]) == canonical_update(update_from_json(case["input"]))


def test_prop_flags_decode_literally_and_ignore_low_bits():
    """Decoding keeps flags as sent (even non-canonical ones) and ignores the four reserved low bits."""
    base = ccp.encode_route_update(RouteUpdateRequest(TABLE_ID, 0, 0, 0, 0, "test.a", (Route("test.b", (), AUTH, (RouteProp(True, True, True, 7, True, b"x"),)),)))
    at = len(base) - 2 - 5  # flags byte of the only prop
    assert base[at] == 0xF0
    for flags, expected in ((0x00, (False, False, False, False)), (0x2F, (False, False, True, False)), (0x9F, (True, False, False, True))):
        raw = base[:at] + bytes((flags,)) + base[at + 1:]
        p = ccp.decode_route_update(raw).new_routes[0].props[0]
        assert (p.is_optional, p.is_transitive, p.is_partial, p.is_utf8) == expected and p.id == 7 and p.value == b"x"


# -- Prepares and the response -------------------------------------------------------------------

def test_prepare_fixtures_match_control_and_update_prepare():
    """control_prepare/update_prepare with the reference's expiry give its Prepares, byte for byte."""
    now = datetime.fromisoformat(FIXTURES["now"].replace("Z", "+00:00"))
    prepares = {p["name"]: p for p in FIXTURES["prepares"]}
    for name, build, req in (
        ("control", ccp.control_prepare, control_from_json(CONTROL_CASES["sync-known"]["input"])),
        ("update", ccp.update_prepare, update_from_json(UPDATE_CASES["heartbeat"]["input"])),
    ):
        ref = prepares[name]
        assert ref["expiryMs"] == ccp.CCP_PREPARE_EXPIRY_MS == 60_000
        prepare = build(req, now + timedelta(milliseconds=ccp.CCP_PREPARE_EXPIRY_MS))
        assert ilp.encode_packet(prepare) == bytes.fromhex(ref["hex"])
        assert prepare.data == bytes.fromhex(ref["dataHex"])


def test_prepare_fields():
    """The Prepares have amount 0, SHA-256(32 zero bytes) as condition and the peer.route.* destination."""
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    control = RouteControlRequest(ccp.MODE_SYNC, bytes(16), 0)
    update = RouteUpdateRequest(TABLE_ID, 1, 0, 1, 30000, "test.me")
    for prepare, destination, data in (
        (ccp.control_prepare(control, expires), "peer.route.control", ccp.encode_route_control(control)),
        (ccp.update_prepare(update, expires), "peer.route.update", ccp.encode_route_update(update)),
    ):
        assert prepare == ilp.Prepare(0, expires, hashlib.sha256(bytes(32)).digest(), destination, data)
    assert ccp.CCP_CONTROL_DESTINATION == "peer.route.control" and ccp.CCP_UPDATE_DESTINATION == "peer.route.update"


def test_prepare_data_round_trips_through_ilp():
    """The reference's control Prepare decodes as an ILP Prepare whose data decodes as the request."""
    ref = next(p for p in FIXTURES["prepares"] if p["name"] == "control")
    prepare = ilp.decode_prepare(bytes.fromhex(ref["hex"]))
    assert prepare.destination == ccp.CCP_CONTROL_DESTINATION and prepare.amount == 0
    assert ccp.decode_route_control(prepare.data) == control_from_json(CONTROL_CASES["sync-known"]["decoded"])


def test_response_fulfill_matches_reference():
    """The answer is a Fulfill of 32 zero bytes with empty data, as the reference serializes it."""
    fulfill = ccp.response_fulfill()
    assert fulfill == ilp.Fulfill(bytes(32), b"")
    assert ilp.encode_packet(fulfill) == bytes.fromhex(FIXTURES["response"]["hex"])
    assert ilp.fulfillment_matches(fulfill.fulfillment, ccp.control_prepare(RouteControlRequest(0, bytes(16), 0), datetime(2030, 1, 1, tzinfo=UTC)).execution_condition)


def test_update_prepare_refuses_data_over_32767_bytes():
    """An update too big for one Prepare raises EncodeError (split it into epoch ranges instead)."""
    big = RouteUpdateRequest(TABLE_ID, 0, 0, 0, 0, "test.a", withdrawn_routes=tuple("g." + "w" * 1000 for _ in range(33)))
    assert len(ccp.encode_route_update(big)) > ilp.MAX_DATA_LENGTH
    with pytest.raises(EncodeError):
        ccp.update_prepare(big, datetime(2030, 1, 1, tzinfo=UTC))


# -- round trips ------------------------------------------------------------------------------------

table_ids = st.binary(min_size=16, max_size=16)
features = st.one_of(
    st.lists(st.one_of(st.text(max_size=12), st.text(min_size=128, max_size=200)), max_size=5).map(tuple),
    st.integers(0, 300).map(lambda n: tuple(f"feature-{i}" for i in range(n))),
)
controls = st.builds(RouteControlRequest, st.sampled_from([ccp.MODE_IDLE, ccp.MODE_SYNC]), table_ids, cs.uint32, features)

prop_values = st.one_of(
    st.binary(max_size=20),
    st.builds(lambda n, b: b * n, st.sampled_from([127, 128, 255, 256, 300, 70000]), st.binary(min_size=1, max_size=1)),
)
props = st.builds(RouteProp, st.booleans(), st.booleans(), st.booleans(), st.integers(0, 0xFFFF), st.booleans(), prop_values)
routes = st.builds(
    Route,
    cs.asn1_address,
    st.lists(cs.asn1_address, max_size=4).map(tuple),
    cs.bytes32,
    st.lists(props, max_size=4).map(tuple),
)
many_routes = st.integers(0, 300).map(lambda n: tuple(Route(f"g.r{i}", ("g.me", f"g.r{i}"), bytes(32)) for i in range(n)))
updates = st.builds(
    RouteUpdateRequest,
    table_ids,
    cs.uint32,
    cs.uint32,
    cs.uint32,
    cs.uint32,
    cs.asn1_address,
    st.one_of(st.lists(routes, max_size=4).map(tuple), many_routes),
    st.one_of(st.lists(cs.asn1_address, max_size=5).map(tuple), st.integers(0, 300).map(lambda n: tuple(f"g.w{i}" for i in range(n)))),
)


@cs.FAST
@given(controls)
def test_control_round_trip(req):
    """decode_route_control(encode_route_control(x)) == x."""
    assert ccp.decode_route_control(ccp.encode_route_control(req)) == req


@cs.FAST
@given(updates)
def test_update_round_trip(req):
    """decode_route_update(encode_route_update(x)) == x with prop flags normalized; re-encoding is stable."""
    raw = ccp.encode_route_update(req)
    decoded = ccp.decode_route_update(raw)
    assert decoded == canonical_update(req)
    assert ccp.encode_route_update(decoded) == raw


@cs.FAST
@given(st.one_of(controls.map(lambda v: (ccp.decode_route_control, ccp.encode_route_control(v))),
                 updates.map(lambda v: (ccp.decode_route_update, ccp.encode_route_update(v)))),
       st.binary(min_size=1, max_size=20))
def test_trailing_bytes_are_ignored(decoder_and_raw, junk):
    """Bytes after a request are ignored, as the draft and the reference do."""
    decoder, raw = decoder_and_raw
    assert decoder(raw + junk) == decoder(raw)


# -- hostile input ------------------------------------------------------------------------------------

DECODERS = (ccp.decode_route_control, ccp.decode_route_update)


def only_decode_error(decoder, raw) -> None:
    """Call ``decoder(raw)``; anything but a value or DecodeError fails the test."""
    try:
        decoder(raw)
    except DecodeError:
        pass


@cs.FAST
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(raw):
    """Random bytes give a value or DecodeError from both decoders, never another exception."""
    for decoder in DECODERS:
        only_decode_error(decoder, raw)


valid = st.one_of(
    controls.map(lambda v: (ccp.decode_route_control, ccp.encode_route_control(v))),
    updates.map(lambda v: (ccp.decode_route_update, ccp.encode_route_update(v))),
)


@cs.FAST
@given(valid, st.data())
def test_every_truncation_raises_decode_error(decoder_and_raw, data):
    """Any proper prefix of a valid encoding raises DecodeError."""
    decoder, raw = decoder_and_raw
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decoder(raw[:cut])


@cs.FAST
@given(valid, st.data())
def test_damaged_encodings_raise_only_decode_error(decoder_and_raw, data):
    """Valid encodings with bytes changed or inserted give a value or DecodeError, nothing else."""
    decoder, raw = decoder_and_raw
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw)))
        if data.draw(st.booleans()) and i < len(raw):
            raw[i] = data.draw(st.integers(0, 255))
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    for decoder in DECODERS:
        only_decode_error(decoder, bytes(raw))


def _update_prefix(speaker: bytes = b"\x06test.a") -> bytes:
    return TABLE_ID + bytes(16) + speaker


@pytest.mark.parametrize(
    "decoder, raw",
    [
        pytest.param(ccp.decode_route_control, b"\x02" + bytes(20) + b"\x01\x00", id="unknown-mode"),
        pytest.param(ccp.decode_route_control, b"\x01" + bytes(20) + b"\x00", id="count-of-length-0"),
        pytest.param(ccp.decode_route_control, b"\x01" + bytes(20) + b"\x09" + b"\x01" * 9, id="count-over-uint64"),
        pytest.param(ccp.decode_route_control, b"\x01" + bytes(20) + b"\x08" + b"\xff" * 8, id="count-2**64-1"),
        pytest.param(ccp.decode_route_control, b"\x01" + bytes(20) + b"\x01\x01\x02\xc3\x28", id="feature-not-utf8"),
        pytest.param(ccp.decode_route_control, b"\x01" + bytes(20) + b"\x01\x01\x81\x05hello", id="non-canonical-length"),
        pytest.param(ccp.decode_route_update, _update_prefix(b"\x06test a") + b"\x01\x00\x01\x00", id="speaker-bad-char"),
        pytest.param(ccp.decode_route_update, _update_prefix(b"\x06test.\xe4") + b"\x01\x00\x01\x00", id="speaker-not-ascii"),
        pytest.param(ccp.decode_route_update, _update_prefix() + b"\x01\x01\x02g!\x01\x00" + bytes(32) + b"\x01\x00\x01\x00", id="prefix-bad-char"),
        pytest.param(ccp.decode_route_update, _update_prefix() + b"\x01\x01\x01g\x01\x01\x02g " + bytes(32) + b"\x01\x00\x01\x00", id="hop-bad-char"),
        pytest.param(ccp.decode_route_update, _update_prefix() + b"\x01\x00\x01\x01\x02g\xff", id="withdrawn-not-ascii"),
        pytest.param(ccp.decode_route_update, _update_prefix() + b"\x04\x7f\xff\xff\xff" + bytes(40), id="routes-cannot-fit"),
        pytest.param(ccp.decode_route_update, _update_prefix() + b"\x01\x00\x01\x00"[:3], id="truncated-withdrawn-count"),
        pytest.param(ccp.decode_route_update, "not bytes", id="str-input"),
        pytest.param(ccp.decode_route_control, None, id="none-input"),
    ],
)
def test_malformed_input_raises_decode_error(decoder, raw):
    """Each kind of malformed input raises DecodeError (and fast, for impossible counts)."""
    with pytest.raises(DecodeError):
        decoder(raw)


# -- encode errors ------------------------------------------------------------------------------------

GOOD_CONTROL = RouteControlRequest(ccp.MODE_SYNC, TABLE_ID, 5, ("a",))
GOOD_PROP = RouteProp(True, True, False, 1, False, b"v")
GOOD_ROUTE = Route("test.b", ("test.a", "test.b"), AUTH, (GOOD_PROP,))
GOOD_UPDATE = RouteUpdateRequest(TABLE_ID, 2, 1, 2, 45000, "test.a", (GOOD_ROUTE,), ("test.c",))


def _update(**changes) -> RouteUpdateRequest:
    fields = {f: getattr(GOOD_UPDATE, f) for f in GOOD_UPDATE.__slots__}
    fields.update(changes)
    return RouteUpdateRequest(**fields)


def _control(**changes) -> RouteControlRequest:
    fields = {f: getattr(GOOD_CONTROL, f) for f in GOOD_CONTROL.__slots__}
    fields.update(changes)
    return RouteControlRequest(**fields)


def _route(**changes) -> RouteUpdateRequest:
    fields = {f: getattr(GOOD_ROUTE, f) for f in GOOD_ROUTE.__slots__}
    fields.update(changes)
    return _update(new_routes=(Route(**fields),))


def _prop(**changes) -> RouteUpdateRequest:
    fields = {f: getattr(GOOD_PROP, f) for f in GOOD_PROP.__slots__}
    fields.update(changes)
    return _route(props=(RouteProp(**fields),))


BAD_CONTROLS = {
    "mode-2": _control(mode=2),
    "mode-negative": _control(mode=-1),
    "mode-bool": _control(mode=True),
    "mode-float": _control(mode=1.0),
    "id-15-bytes": _control(last_known_routing_table_id=bytes(15)),
    "id-17-bytes": _control(last_known_routing_table_id=bytes(17)),
    "id-uuid-string": _control(last_known_routing_table_id=str(uuid.UUID(bytes=TABLE_ID))),
    "epoch-negative": _control(last_known_epoch=-1),
    "epoch-2**32": _control(last_known_epoch=2**32),
    "epoch-float": _control(last_known_epoch=1.0),
    "features-str": _control(features="abc"),
    "feature-bytes": _control(features=(b"abc",)),
    "feature-lone-surrogate": _control(features=("\ud800",)),
    "not-a-request": GOOD_UPDATE,
}

BAD_UPDATES = {
    "id-15-bytes": _update(routing_table_id=bytes(15)),
    "id-none": _update(routing_table_id=None),
    "current-epoch-2**32": _update(current_epoch_index=2**32),
    "from-epoch-negative": _update(from_epoch_index=-1),
    "to-epoch-bool": _update(to_epoch_index=True),
    "hold-down-2**32": _update(hold_down_time=2**32),
    "speaker-space": _update(speaker="test.a b"),
    "speaker-non-ascii": _update(speaker="test.ä"),
    "speaker-1024-chars": _update(speaker="g." + "a" * 1022),
    "speaker-bytes": _update(speaker=b"test.a"),
    "withdrawn-invalid": _update(withdrawn_routes=("test.ok", "bad/prefix")),
    "withdrawn-str": _update(withdrawn_routes="test.c"),
    "routes-not-route": _update(new_routes=("test.b",)),
    "prefix-invalid": _route(prefix="test.b!"),
    "hop-invalid": _route(path=("test.a", "test b")),
    "path-str": _route(path="test.a"),
    "auth-31-bytes": _route(auth=bytes(31)),
    "auth-33-bytes": _route(auth=bytes(33)),
    "auth-str": _route(auth="0" * 32),
    "props-not-prop": _route(props=(b"\x80",)),
    "prop-id-65536": _prop(id=65536),
    "prop-id-negative": _prop(id=-1),
    "prop-value-str": _prop(value="v"),
    "prop-flag-int": _prop(is_optional=1),
    "prop-utf8-none": _prop(is_utf8=None),
    "not-a-request": GOOD_CONTROL,
}


def test_good_values_encode():
    """The values the encode-error cases start from are themselves valid."""
    assert ccp.decode_route_control(ccp.encode_route_control(GOOD_CONTROL)) == GOOD_CONTROL
    assert ccp.decode_route_update(ccp.encode_route_update(GOOD_UPDATE)) == GOOD_UPDATE


@pytest.mark.parametrize("name", sorted(BAD_CONTROLS))
def test_invalid_control_raises_encode_error(name):
    """encode_route_control and control_prepare refuse an invalid request with EncodeError."""
    with pytest.raises(EncodeError):
        ccp.encode_route_control(BAD_CONTROLS[name])
    with pytest.raises(EncodeError):
        ccp.control_prepare(BAD_CONTROLS[name], datetime(2030, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("name", sorted(BAD_UPDATES))
def test_invalid_update_raises_encode_error(name):
    """encode_route_update and update_prepare refuse an invalid request with EncodeError."""
    with pytest.raises(EncodeError):
        ccp.encode_route_update(BAD_UPDATES[name])
    with pytest.raises(EncodeError):
        ccp.update_prepare(BAD_UPDATES[name], datetime(2030, 1, 1, tzinfo=UTC))


odd = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2**33), st.floats(allow_nan=False), st.text(max_size=5),
    st.binary(max_size=40), st.tuples(st.text(max_size=3)), st.just(("test.a",)), st.just(()),
)


@cs.FAST
@given(odd, odd, odd, odd, odd, odd, odd, odd)
def test_encoders_raise_only_encode_error(a, b, c, d, e, f, g, h):
    """Whatever the field values, the encoders return bytes or raise EncodeError, nothing else."""
    for build, encoder in (
        (lambda: RouteControlRequest(a, b, c, d), ccp.encode_route_control),
        (lambda: RouteUpdateRequest(a, b, c, d, e, f, g, h), ccp.encode_route_update),
        (lambda: _update(new_routes=(Route(a, b, c, d),)), ccp.encode_route_update),
        (lambda: _route(props=(RouteProp(a, b, c, d, e, f),)), ccp.encode_route_update),
    ):
        try:
            assert isinstance(encoder(build()), bytes)
        except EncodeError:
            pass
