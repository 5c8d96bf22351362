"""The rippled double's close timer (task clock): ledgers close every close_interval, but not within half an interval
of a submit (one tick is skipped at most), so a submit's answer and its validation never arrive together."""

from __future__ import annotations

from conftest import make_wallet
from twisted.internet.task import Clock
from xrpl.models.transactions import Payment

from ilptx_xrp_paychan.rippled import sign_transaction
from rippled_double import Ledger, RippledDouble

START = 1_700_000_000


def _double():
    clock = Clock()
    clock.advance(START)
    return clock, RippledDouble(Ledger(clock.seconds), clock, close_interval=1.0, clock=clock)


def _submit(double, wallet, sequence: int) -> None:
    """Submit a signed payment of 1 XRP from ``wallet`` to ``double.dest``."""
    tx = Payment(account=wallet.classic_address, destination=double.dest, amount="1000000")
    blob, _ = sign_transaction(tx, wallet, fee=10, sequence=sequence,
                               last_ledger_sequence=double.ledger.current_index + 10)
    assert double.cmd_submit(None, {"tx_blob": blob})["engine_result"] == "tesSUCCESS"


def test_ledgers_close_every_interval_without_submits():
    """With nothing submitted, each tick closes one ledger."""
    clock, double = _double()
    first = double.ledger.validated_index
    clock.advance(1)
    clock.advance(1)
    assert double.ledger.validated_index == first + 2


def test_a_tick_right_after_a_submit_is_skipped_once():
    """A submit 0.1 s before a tick: that tick does not close (the next does); a submit 0.6 s before: it closes."""
    clock, double = _double()
    payer, payee = make_wallet(), make_wallet()
    double.ledger.fund(payer.classic_address, 100 * 10 ** 6)
    double.ledger.fund(payee.classic_address, 100 * 10 ** 6)
    double.dest = payee.classic_address
    first = double.ledger.validated_index
    clock.advance(0.9)
    _submit(double, payer, double.ledger.account(payer.classic_address).sequence)
    clock.advance(0.1)
    assert double.ledger.validated_index == first
    clock.advance(1)
    assert double.ledger.validated_index == first + 1
    clock.advance(0.4)
    _submit(double, payer, double.ledger.account(payer.classic_address).sequence)
    clock.advance(0.6)
    assert double.ledger.validated_index == first + 2
    double.stop_timer()
