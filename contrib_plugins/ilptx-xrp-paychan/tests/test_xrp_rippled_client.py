"""The rippled client against the rippled double over real WebSockets on 127.0.0.1.

Ledgers close when the test says (``ledger_accept``, or the ``autoclose`` fixture: right after
each ``submit``); nothing waits for wall-clock time except the one request-timeout test.
"""

from __future__ import annotations

import functools

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from xrpl.core import keypairs
from xrpl.core.binarycodec import decode, encode, encode_for_signing_claim
from xrpl.models.transactions import Payment, PaymentChannelClaim, PaymentChannelCreate

from conftest import start_double
from ilptx_xrp_paychan.rippled import (IXrpLedger, LedgerUnavailableError, RippledClient, RippledError,
                                       TransactionExpiredError, TransactionFailedError, TransactionRejectedError,
                                       sign_transaction)
from rippled_double import Ledger, RippledDouble, channel_id

XRP = 1_000_000
#: Seconds a test may take: a client that never fires a Deferred fails the test instead of hanging it.
TEST_TIMEOUT = 15


def bounded(test):
    """Run an ``async def`` test on the reactor, cancelled (finally blocks run) after TEST_TIMEOUT."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return ensureDeferred(test(*args, **kwargs)).addTimeout(TEST_TIMEOUT, reactor)
    return run


def make_client(url: str, **kw) -> RippledClient:
    options = dict(request_timeout=5.0, retry_initial=0.02, retry_max=0.1, poll_interval=0.5)
    options.update(kw)
    client = RippledClient(url, reactor, **options)
    client.start()
    return client


@pytest.fixture
def client(rippled):
    """A started client of the session's double (stopped after the test)."""
    c = make_client(rippled.url)
    yield c
    pytest_twisted.blockon(c.stop())


@pytest.fixture
def autoclose(rippled):
    """Close a ledger on the turn after every ``submit`` the double answers."""
    def hook(request):
        if request.get("command") == "submit":
            reactor.callLater(0, rippled.server.ledger_accept)
    rippled.server.on_request = hook
    yield
    rippled.server.on_request = None


def when_called(predicate) -> tuple[Deferred, callable]:
    """A Deferred fired (once) with the first message for which ``predicate`` holds, and the callback."""
    d: Deferred = Deferred()

    def callback(message):
        if not d.called and predicate(message):
            d.callback(message)
    return d, callback


async def shut_down(client: RippledClient, double) -> None:
    """Stop a test's own client and double."""
    await client.stop()
    double.server.drop_clients()
    await double.port.stopListening()


def test_client_provides_the_narrow_ledger_interface(rippled):
    """RippledClient implements IXrpLedger (the plugins depend on the interface only)."""
    assert IXrpLedger.implementedBy(RippledClient)


@bounded
async def test_reads_come_back_in_rippleds_shapes(rippled, client):
    """server_info, fee and account_info answer as rippled does; an unknown account is None."""
    alice = rippled.funded(50 * XRP)
    info = await client.server_info()
    assert info["validated_ledger"]["seq"] == rippled.ledger.validated_index and info["server_state"] == "full"
    fee = await client.fee()
    assert fee["drops"]["open_ledger_fee"] == "10" and fee["ledger_current_index"] == rippled.ledger.current_index
    account = await client.account_info(alice.classic_address)
    assert (account["Balance"], account["Sequence"]) == (str(50 * XRP), rippled.ledger.validated_index)
    assert await client.account_info("rrrrrrrrrrrrrrrrrrrrBZbvji") is None


@bounded
async def test_submit_fires_only_once_the_ledger_is_validated(rippled, client):
    """submit_transaction's Deferred waits past the preliminary tesSUCCESS until the ledger closes."""
    alice, bob = rippled.funded(), rippled.funded(20 * XRP)
    arrived: Deferred = Deferred()
    rippled.server.on_request = lambda r: r.get("command") == "submit" and reactor.callLater(0, arrived.callback, 0)
    try:
        d = client.submit_transaction(alice, Payment(account=alice.classic_address, amount=str(3 * XRP),
                                                     destination=bob.classic_address))
        await arrived
        await client.request("ping")          # the submit answer (tesSUCCESS, open ledger) is in
        assert not d.called
        index = rippled.server.ledger_accept()
        result = await d
    finally:
        rippled.server.on_request = None
    assert (result.code, result.ledger_index) == ("tesSUCCESS", index)
    assert rippled.ledger.account(bob.classic_address, validated=True).balance == 23 * XRP
    assert result.tx["Fee"] == "10" and result.tx["LastLedgerSequence"] == index + 20


@bounded
async def test_channel_create_read_and_claim_through_the_client(rippled, client, autoclose):
    """Create → ledger_entry and account_channels show it → the destination's claim moves the drops."""
    alice, bob = rippled.funded(), rippled.funded(20 * XRP)
    created = await client.submit_transaction(alice, PaymentChannelCreate(
        account=alice.classic_address, amount=str(10 * XRP), destination=bob.classic_address, settle_delay=3600,
        public_key=alice.public_key))
    chan = channel_id(alice.classic_address, bob.classic_address, created.tx["Sequence"])
    node = await client.channel(chan)
    assert (node["Amount"], node["Balance"], node["PublicKey"]) == (str(10 * XRP), "0", alice.public_key)
    listed = await client.account_channels(alice.classic_address, bob.classic_address)
    assert [c["channel_id"] for c in listed] == [chan]
    sig = keypairs.sign(bytes.fromhex(encode_for_signing_claim({"channel": chan, "amount": "2500000"})),
                        alice.private_key)
    await client.submit_transaction(bob, PaymentChannelClaim(account=bob.classic_address, channel=chan,
                                                             balance="2500000", amount="2500000", signature=sig,
                                                             public_key=alice.public_key))
    assert (await client.channel(chan))["Balance"] == "2500000"
    assert rippled.ledger.account(bob.classic_address, validated=True).balance == 20 * XRP + 2_500_000 - 10
    assert await client.channel("00" * 32) is None


@bounded
async def test_validated_tec_result_is_transaction_failed(rippled, client, autoclose):
    """A claim above the channel's Amount validates as tecUNFUNDED_PAYMENT: TransactionFailedError, fee charged."""
    alice, bob = rippled.funded(), rippled.funded(20 * XRP)
    created = await client.submit_transaction(alice, PaymentChannelCreate(
        account=alice.classic_address, amount=str(XRP), destination=bob.classic_address, settle_delay=3600,
        public_key=alice.public_key))
    chan = channel_id(alice.classic_address, bob.classic_address, created.tx["Sequence"])
    sig = keypairs.sign(bytes.fromhex(encode_for_signing_claim({"channel": chan, "amount": str(XRP + 1)})),
                        alice.private_key)
    with pytest.raises(TransactionFailedError) as failed:
        await client.submit_transaction(bob, PaymentChannelClaim(
            account=bob.classic_address, channel=chan, balance=str(XRP + 1), amount=str(XRP + 1), signature=sig,
            public_key=alice.public_key))
    assert failed.value.code == "tecUNFUNDED_PAYMENT" and failed.value.result.ledger_index > 0
    assert rippled.ledger.account(bob.classic_address, validated=True).balance == 20 * XRP - 10


@bounded
async def test_forged_blob_is_a_rippled_error(rippled, client):
    """A blob whose TxnSignature was made for other contents: RippledError invalidTransaction."""
    alice, bob = rippled.funded(), rippled.funded()
    blob, _ = sign_transaction(Payment(account=alice.classic_address, amount="1000", destination=bob.classic_address),
                               alice, fee=10, sequence=rippled.ledger.account(alice.classic_address).sequence,
                               last_ledger_sequence=rippled.ledger.current_index + 3)
    forged = encode(dict(decode(blob), Amount="99999"))
    with pytest.raises(RippledError) as err:
        await client.submit(forged)
    assert err.value.error == "invalidTransaction"


@bounded
async def test_preliminary_rejection_is_transaction_rejected(rippled, client):
    """Fee 9 < 10 drops: telINSUF_FEE_P at once, TransactionRejectedError, never looked up again."""
    alice, bob = rippled.funded(), rippled.funded()
    blob, digest = sign_transaction(Payment(account=alice.classic_address, amount="1000",
                                            destination=bob.classic_address), alice, fee=9,
                                    sequence=rippled.ledger.account(alice.classic_address).sequence,
                                    last_ledger_sequence=rippled.ledger.current_index + 3)
    with pytest.raises(TransactionRejectedError) as err:
        await client.submit(blob)
    assert err.value.code == "telINSUF_FEE_P" and err.value.hash == digest
    assert digest not in rippled.ledger.txs


@bounded
async def test_transaction_that_never_validates_expires_after_last_ledger_sequence(rippled, client):
    """terPRE_SEQ (not applied) with LastLedgerSequence = next ledger: TransactionExpiredError once it passed."""
    alice, bob = rippled.funded(), rippled.funded()
    lls = rippled.ledger.current_index + 1
    blob, digest = sign_transaction(Payment(account=alice.classic_address, amount="1000",
                                            destination=bob.classic_address), alice, fee=10,
                                    sequence=rippled.ledger.account(alice.classic_address).sequence + 5,
                                    last_ledger_sequence=lls)
    d = client.submit(blob)
    await client.request("ping")
    rippled.server.ledger_accept()
    await client.request("ping")
    assert not d.called                          # ledger lls - 1 validated: it could still come
    rippled.server.ledger_accept()
    with pytest.raises(TransactionExpiredError) as err:
        await d
    assert (err.value.hash, err.value.last_ledger_sequence, err.value.last_result) == (digest, lls, "terPRE_SEQ")


@bounded
async def test_account_subscription_streams_validated_transactions(rippled, client, autoclose):
    """subscribe_account(bob): the validated transaction paying bob arrives, also after a failing listener."""
    alice, bob = rippled.funded(), rippled.funded()
    got, callback = when_called(lambda m: m["transaction"].get("Destination") == bob.classic_address)
    await client.request("ping")              # connected and subscribed to the ledger stream already
    client.subscribe_account(bob.classic_address, lambda m: 1 / 0)   # a broken listener harms nobody else
    client.subscribe_account(bob.classic_address, callback)
    await client.request("ping")
    result = await client.submit_transaction(alice, Payment(account=alice.classic_address, amount="777",
                                                            destination=bob.classic_address))
    message = await got
    assert message["validated"] is True and message["engine_result"] == "tesSUCCESS"
    assert message["transaction"]["hash"] == result.hash


@bounded
async def test_parallel_submissions_from_one_account_take_consecutive_sequences(rippled, client, autoclose):
    """Two submit_transaction calls at once from alice both validate, with sequences n and n + 1."""
    alice, bob = rippled.funded(), rippled.funded()
    first = client.submit_transaction(alice, Payment(account=alice.classic_address, amount="1",
                                                     destination=bob.classic_address))
    second = client.submit_transaction(alice, Payment(account=alice.classic_address, amount="2",
                                                      destination=bob.classic_address))
    results = [await first, await second]
    assert sorted(r.tx["Sequence"] for r in results) == [results[0].tx["Sequence"], results[0].tx["Sequence"] + 1]
    assert {r.code for r in results} == {"tesSUCCESS"}


@bounded
async def test_client_reconnects_after_the_double_restarts():
    """The double goes away and comes back on its port: the request made meanwhile is answered, streams resume."""
    double = start_double()
    port = double.port.getHost().port
    c = make_client(double.url)
    try:
        await c.request("ping")
        await double.port.stopListening()
        double.server.drop_clients()
        pending = c.server_info()
        double.port = reactor.listenTCP(port, double.server, interface="127.0.0.1")
        info = await pending
        assert info["build_version"] == "rippled-double"
        closed, callback = when_called(lambda m: True)
        c.on_ledger_closed(callback)
        await c.request("ping")
        index = double.server.ledger_accept()
        assert (await closed)["ledger_index"] == index          # re-subscribed to the ledger stream
    finally:
        await shut_down(c, double)


@bounded
async def test_request_cut_off_in_flight_is_sent_again_on_the_next_connection():
    """The connection drops while server_info is in flight: it is resent after reconnecting and answered."""
    double = start_double()
    c = make_client(double.url, request_timeout=10)
    seen = []

    def cut_first(request):
        seen.append(request["command"])
        if request["command"] == "server_info" and seen.count("server_info") == 1:
            double.server.drop_clients()           # its answer is never sent
    try:
        await c.request("ping")
        double.server.on_request = cut_first
        started = reactor.seconds()
        info = await c.server_info()
        assert info["server_state"] == "full" and seen.count("server_info") == 2
        assert reactor.seconds() - started < 5      # resent at once, not after the request timeout
    finally:
        await shut_down(c, double)


@bounded
async def test_submit_validated_while_disconnected_is_found_after_reconnection():
    """The ledger closes while the client is cut off (no stream message): the tx lookup on reconnection finds it."""
    double = start_double()
    alice, bob = double.funded(), double.funded()
    c = make_client(double.url, poll_interval=60)
    looked_up: Deferred = Deferred()
    double.server.on_request = lambda r: r.get("command") == "tx" and not looked_up.called and looked_up.callback(0)
    try:
        d = c.submit_transaction(alice, Payment(account=alice.classic_address, amount="5",
                                                destination=bob.classic_address))
        await looked_up                             # the client's tx look-up after submit (not yet validated)
        await c.request("ping")                     # ... and its answer are done: nothing is in flight
        double.server.drop_clients()
        double.server.ledger_accept()               # nobody subscribed hears this ledger close
        result = await d
        assert result.code == "tesSUCCESS" and result.ledger_index == double.ledger.validated_index
    finally:
        await shut_down(c, double)


@bounded
async def test_ledger_down_at_start_is_waited_for():
    """A client started before the double listens retries with backoff and answers once it is up."""
    double = start_double()
    port = double.port.getHost().port
    await double.port.stopListening()
    c = make_client(double.url)
    try:
        pending = c.fee()
        double.port = reactor.listenTCP(port, double.server, interface="127.0.0.1")
        assert (await pending)["drops"]["base_fee"] == "10"
    finally:
        await shut_down(c, double)


@bounded
async def test_request_to_a_ledger_that_stays_down_times_out():
    """No rippled at the URL: LedgerUnavailableError after request_timeout, naming the command."""
    double = start_double()
    url = double.url
    await double.port.stopListening()
    c = make_client(url, request_timeout=0.3)
    try:
        with pytest.raises(LedgerUnavailableError, match="server_info"):
            await c.server_info()
    finally:
        await c.stop()


@bounded
async def test_ledger_accept_can_move_the_doubles_clock(rippled, client):
    """ledger_accept with advance (a double-only parameter) closes a ledger that many seconds later."""
    before = rippled.ledger.close_time
    result = await client.request("ledger_accept", advance=3600)
    assert rippled.ledger.close_time >= before + 3600
    assert result["ledger_current_index"] == rippled.ledger.current_index


@bounded
async def test_unknown_command_is_unknown_cmd(rippled, client):
    """A command the double does not have: RippledError unknownCmd (rippled's token)."""
    with pytest.raises(RippledError) as err:
        await client.request("book_offers")
    response = err.value.response
    assert (err.value.error, response["error_code"], response["status"], response["type"]) == (
        "unknownCmd", 32, "error", "response")
    assert response["request"]["command"] == "book_offers" and isinstance(response["id"], int)


def test_double_closes_ledgers_on_its_timer():
    """close_interval: a ledger closes every interval of the injected clock, none before."""
    clock = Clock()
    clock.advance(1_800_000_000)
    double = RippledDouble(Ledger(clock.seconds), reactor, close_interval=4, clock=clock)
    start = double.ledger.validated_index
    clock.advance(3.9)
    assert double.ledger.validated_index == start
    clock.advance(0.1)
    clock.advance(4)
    assert double.ledger.validated_index == start + 2
    double.stop_timer()


@bounded
async def test_double_as_its_own_process_serves_the_genesis_account():
    """``python -m rippled_double``: the client pays from the stand-alone genesis account, closes on its timer."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from xrpl import CryptoAlgorithm
    from xrpl.wallet import Wallet

    from conftest import make_wallet
    from rippled_double import GENESIS_SEED, RESERVE_BASE
    tests = Path(__file__).resolve().parent
    proc = subprocess.Popen([sys.executable, "-m", "rippled_double", "--close-interval", "0.1"], cwd=tests,
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(tests)))
    c = None
    try:
        line = await deferToThread(proc.stdout.readline)
        assert line.startswith("rippled double listening on ws://127.0.0.1:"), line
        c = make_client(line.split()[-1])
        genesis = Wallet.from_seed(GENESIS_SEED, algorithm=CryptoAlgorithm.SECP256K1)
        fresh = make_wallet()
        result = await c.submit_transaction(genesis, Payment(account=genesis.classic_address,
                                                             amount=str(RESERVE_BASE * 5),
                                                             destination=fresh.classic_address))
        assert result.code == "tesSUCCESS"
        assert (await c.account_info(fresh.classic_address))["Balance"] == str(RESERVE_BASE * 5)
    finally:
        if c is not None:
            await c.stop()
        proc.send_signal(signal.SIGTERM)
        await deferToThread(proc.wait, 10)
        proc.stdout.close()


@bounded
async def test_missing_channel_is_entry_not_found_in_rippleds_envelope(rippled, client):
    """ledger_entry of an absent PayChannel: status error, error entryNotFound (channel() turns it into None)."""
    with pytest.raises(RippledError) as err:
        await client.request("ledger_entry", payment_channel="AB" * 32, ledger_index="validated")
    assert (err.value.response["status"], err.value.error) == ("error", "entryNotFound")


@bounded
async def test_unsubscribed_account_gets_no_more_transactions(rippled, client, autoclose):
    """After unsubscribe (accounts), a payment to the account streams nothing; the ledger stream goes on."""
    alice, bob = rippled.funded(), rippled.funded()
    got = []
    await client.request("ping")
    client.subscribe_account(bob.classic_address, got.append)
    await client.request("unsubscribe", accounts=[bob.classic_address])
    closed, on_closed = when_called(lambda m: True)
    client.on_ledger_closed(on_closed)
    await client.submit_transaction(alice, Payment(account=alice.classic_address, amount="1",
                                                   destination=bob.classic_address))
    await closed
    await client.request("ping")
    assert got == []


def _self_signed() -> tuple[bytes, bytes]:
    """A P-256 certificate for localhost / 127.0.0.1 and its key, PEM (cryptography)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@bounded
async def test_client_speaks_wss_and_checks_the_certificate():
    """wss:// with the double behind TLS: answered with the cert trusted; refused for another host name."""
    from twisted.internet import ssl
    cert, key = _self_signed()
    server = RippledDouble(Ledger(reactor.seconds), reactor)
    port = reactor.listenSSL(0, server, ssl.PrivateCertificate.loadPEM(cert + key).options(), interface="127.0.0.1")
    url = f"wss://localhost:{port.getHost().port}"
    trusted = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(cert))
    good = make_client(url, tls=trusted)
    wrong = make_client(url, request_timeout=0.5,
                        tls=ssl.optionsForClientTLS("not-localhost", trustRoot=ssl.Certificate.loadPEM(cert)))
    try:
        assert (await good.fee())["drops"]["base_fee"] == "10"
        with pytest.raises(LedgerUnavailableError):
            await wrong.fee()
    finally:
        await good.stop()
        await wrong.stop()
        server.drop_clients()
        await port.stopListening()
