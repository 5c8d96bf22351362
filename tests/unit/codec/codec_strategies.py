"""Hypothesis strategies for ILP packets, BTP frames and IL-DCP values (shared by the codec tests).

Sizes are chosen so that length prefixes cover the short form (< 128) and both one- and
two-byte long forms, without making Hypothesis generate tens of kilobytes byte by byte:
large blobs are a repeated byte pattern of a drawn length.
"""

from __future__ import annotations

import string
from datetime import datetime, timezone

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ilptx.codec import btp, ildcp, ilp

UTC = timezone.utc
UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1

#: Settings shared by the property tests: enough examples to find edge cases, fast enough to
#: keep the whole codec suite well under 30 s.
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ADDRESS_ALPHABET = string.ascii_letters + string.digits + "._~-"
ASCII = st.characters(max_codepoint=127)

uint64 = st.one_of(st.sampled_from([0, 1, 127, 128, 255, 256, 2**32, 2**63, UINT64_MAX]), st.integers(0, UINT64_MAX))
uint32 = st.one_of(st.sampled_from([0, 1, UINT32_MAX]), st.integers(0, UINT32_MAX))
bytes32 = st.binary(min_size=32, max_size=32)


def _blob(sizes):
    """Bytes of one of ``sizes``, filled with a drawn pattern (cheap to generate when large)."""
    return st.builds(
        lambda n, pattern: (pattern * (n // len(pattern) + 1))[:n],
        st.sampled_from(sizes),
        st.binary(min_size=1, max_size=8),
    )


#: ILP ``data``: OCTET STRING (SIZE (0..32767)); 200 and 32767 force long-form prefixes.
ilp_data = st.one_of(st.binary(max_size=150), _blob([0, 127, 128, 200, 255, 256, 4096, 32767]))
#: BTP protocol data: unbounded OCTET STRING; 40000 and 70000 need 2- and 3-byte lengths.
btp_data = st.one_of(st.binary(max_size=150), _blob([0, 128, 200, 40000, 70000]))
#: BTP Error data: OCTET STRING (SIZE (0..8192)).
btp_error_data = st.one_of(st.binary(max_size=150), _blob([0, 128, 200, 8192]))

#: RFC 15 addresses (scheme + segments), occasionally long enough for a long-form prefix.
full_address = st.one_of(
    st.from_regex(r"\A(g|private|example|peer|self|test[1-3]?|local)(\.[A-Za-z0-9_~-]{1,12}){1,6}\Z"),
    st.builds(
        lambda n, pattern: "g." + (pattern * (n // len(pattern) + 1))[:n],
        st.sampled_from([126, 200, 1021]),
        st.text(ADDRESS_ALPHABET.replace(".", ""), min_size=1, max_size=8),
    ),
)
#: Anything the ASN.1 ``Address`` type allows (charset, 0..1023), including the empty string.
asn1_address = st.one_of(full_address, st.text(ADDRESS_ALPHABET, max_size=40))

#: Millisecond-precision aware UTC datetimes over the whole 4-digit-year range.
timestamps = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999000),
    timezones=st.just(UTC),
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))

#: UTF-8 text (Hypothesis excludes lone surrogates by default), sometimes long.
messages = st.one_of(st.text(max_size=60), st.text(min_size=130, max_size=300))
error_codes = st.one_of(
    st.sampled_from(sorted(ilp.ERROR_NAMES)),
    st.text(ASCII, min_size=3, max_size=3),
)

prepares = st.builds(ilp.Prepare, uint64, timestamps, bytes32, full_address, ilp_data)
fulfills = st.builds(ilp.Fulfill, bytes32, ilp_data)
rejects = st.builds(ilp.Reject, error_codes, asn1_address, messages, ilp_data)
packets = st.one_of(prepares, fulfills, rejects)

amount_too_large = st.builds(ilp.AmountTooLargeData, uint64, uint64)
ildcp_responses = st.builds(
    ildcp.IldcpResponse, asn1_address, st.integers(0, 255), st.one_of(st.text(max_size=10), st.text(min_size=128, max_size=200))
)

entries = st.builds(
    btp.ProtocolDataEntry,
    st.one_of(st.sampled_from(["ilp", "auth", "auth_token", "auth_username", ""]), st.text(ASCII, max_size=20)),
    st.integers(0, 255),
    btp_data,
)
protocol_data = st.lists(entries, max_size=4).map(tuple)

btp_messages = st.builds(btp.Message, uint32, protocol_data)
btp_responses = st.builds(btp.Response, uint32, protocol_data)
btp_transfers = st.builds(btp.Transfer, uint32, uint64, protocol_data)
btp_errors = st.builds(
    btp.Error,
    uint32,
    st.text(ASCII, min_size=3, max_size=3),
    st.text(ASCII, max_size=40),
    st.one_of(timestamps.map(btp.generalized_time), st.text(ASCII, max_size=25)),
    btp_error_data,
    protocol_data,
)
frames = st.one_of(btp_messages, btp_responses, btp_transfers, btp_errors)
