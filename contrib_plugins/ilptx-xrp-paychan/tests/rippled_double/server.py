"""The rippled double's WebSocket API: Autobahn on Twisted, on 127.0.0.1.

Each request is a JSON object ``{"id", "command", ...}``; the answer is rippled's envelope
``{"id", "status": "success", "type": "response", "result": {...}}`` or
``{"id", "status": "error", "type": "response", "error", "error_code"?, "error_message", "request"}``
(https://xrpl.org/docs/references/http-websocket-apis/api-conventions/response-formatting).
Streams (``subscribe``) send ``ledgerClosed`` and validated ``transaction`` messages
(https://xrpl.org/docs/references/http-websocket-apis/public-api-methods/subscription-methods/subscribe).

Ledgers close when a client sends ``ledger_accept`` (rippled's standalone-mode admin command;
this double also takes ``"advance": <seconds>`` to move its clock forward first — not rippled),
when a test calls :meth:`RippledDouble.ledger_accept`, or every ``close_interval`` seconds.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .ledger import BASE_FEE, RESERVE_BASE, RESERVE_INC, RESULTS, Ledger, RpcError, TxRecord

_log = Logger(namespace="rippled_double")

#: rippled's numeric codes for the errors used here (rippled ``ErrorCodes.h``).
_ERROR_CODES = {"actNotFound": 19, "txnNotFound": 29, "invalidParams": 31, "unknownCmd": 32, "actMalformed": 35}


def _validated(params: dict[str, Any]) -> bool:
    """``ledger_index``: ``"validated"`` (or a number ≤ validated) reads the last closed ledger; default current."""
    return params.get("ledger_index", "current") not in ("current",)


class _Protocol(WebSocketServerProtocol):
    factory: "RippledDouble"

    def onOpen(self) -> None:  # noqa: N802 - Autobahn's name
        self.factory.clients.add(self)
        self.streams: set[str] = set()
        self.accounts: set[str] = set()

    def onClose(self, wasClean, code, reason) -> None:  # noqa: N802, N803
        self.factory.clients.discard(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
        try:
            request = json.loads(payload)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            self.send({"status": "error", "type": "response", "error": "invalidParams",
                       "error_message": "Unable to parse request."})
            return
        answer: dict[str, Any] = {"id": request.get("id"), "type": "response"}
        try:
            answer.update(status="success", result=self.factory.handle(self, request))
        except RpcError as err:
            answer.update(status="error", error=err.error, error_message=err.message, request=request, **err.extra)
            if err.error in _ERROR_CODES:
                answer["error_code"] = _ERROR_CODES[err.error]
        except Exception:  # noqa: BLE001 - a bug of the double answers "internal", as rippled would, and is logged
            _log.failure("the rippled double failed on {request}", request=request)
            answer.update(status="error", error="internal", error_message="Internal error.", request=request)
        self.send(answer)

    def send(self, message: dict[str, Any]) -> None:
        if self.state == self.STATE_OPEN:       # a stream message racing a close is dropped, as by rippled
            self.sendMessage(json.dumps(message).encode())


class RippledDouble(WebSocketServerFactory):
    """The WebSocket factory; listen with ``reactor.listenTCP(0, double, interface="127.0.0.1")``.

    ``ledger`` is the :class:`~.ledger.Ledger`; ``close_interval`` (seconds, ``None``: only on
    demand) closes ledgers on ``clock`` (default: the reactor). ``on_request`` (tests) sees every request.
    """

    protocol = _Protocol

    def __init__(self, ledger: Ledger, reactor: Any, close_interval: Optional[float] = None,
                 clock: Any = None) -> None:
        super().__init__("ws://127.0.0.1", reactor=reactor)
        self.ledger = ledger
        self.clients: set[_Protocol] = set()
        self.requests: list[dict[str, Any]] = []
        self.on_request: Optional[Callable[[dict[str, Any]], None]] = None
        self._timer: Optional[LoopingCall] = None
        self._clock = clock or reactor
        self._last_submit = float("-inf")
        self._skipped = False
        self._min_age = (close_interval or 0) / 2
        if close_interval:
            self._timer = LoopingCall(self._tick)
            self._timer.clock = self._clock
            self._timer.start(close_interval, now=False)

    def _tick(self) -> None:
        """The close timer: a ledger does not close within ``close_interval / 2`` of a submit (at most one tick
        in a row is skipped). On rippled a transaction that arrives late in a consensus round waits for the next
        ledger, and validation takes seconds, so a ``submit`` answer and the validated ``transaction`` message never
        arrive together; ripple-lib 0.22's submitter (``ilp-plugin-xrp-paychan-shared``) misses the stream message
        when they do."""
        if not self._skipped and self._clock.seconds() - self._last_submit < self._min_age:
            self._skipped = True
            return
        self._skipped = False
        self.ledger_accept()

    def stop_timer(self) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()

    def drop_clients(self) -> None:
        """Close every client connection (tests of reconnection)."""
        for client in list(self.clients):
            self.clients.discard(client)
            client.dropConnection(abort=True)

    # -- ledger closes and streams ---------------------------------------------------------

    def _ledger_info(self) -> dict[str, Any]:
        lg = self.ledger
        return {"fee_base": BASE_FEE, "fee_ref": BASE_FEE, "ledger_hash": lg.ledger_hash,
                "ledger_index": lg.validated_index, "ledger_time": lg.close_time,
                "reserve_base": RESERVE_BASE, "reserve_inc": RESERVE_INC,
                "validated_ledgers": f"1-{lg.validated_index}"}

    def ledger_accept(self, advance: int = 0) -> int:
        """Close the open ledger (``advance`` seconds after the last close at least); stream it;
        returns its index."""
        if advance:
            self.ledger.advance(advance)
        records = self.ledger.close()
        closed = dict(self._ledger_info(), type="ledgerClosed", txn_count=len(records))
        for client in list(self.clients):
            if "ledger" in client.streams:
                client.send(closed)
        for record in records:
            self._stream_transaction(record)
        return self.ledger.validated_index

    def _stream_transaction(self, record: TxRecord) -> None:
        number, message = RESULTS[record.result]
        event = {"type": "transaction", "status": "closed", "validated": True,
                 "engine_result": record.result, "engine_result_code": number, "engine_result_message": message,
                 "ledger_hash": self.ledger.ledger_hash, "ledger_index": record.ledger_index,
                 "meta": record.meta, "transaction": dict(record.tx_json, hash=record.hash, date=record.date)}
        for client in list(self.clients):
            if "transactions" in client.streams or client.accounts & record.affected:
                client.send(event)

    # -- commands --------------------------------------------------------------------------

    def handle(self, client: _Protocol, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        command = request.get("command")
        method = getattr(self, "cmd_" + str(command), None)
        if method is None:
            raise RpcError("unknownCmd", "Unknown method.")
        return method(client, request)

    def cmd_ping(self, client, req) -> dict[str, Any]:
        return {}

    def cmd_server_info(self, client, req) -> dict[str, Any]:
        lg = self.ledger
        return {"info": {
            "build_version": "rippled-double", "complete_ledgers": f"1-{lg.validated_index}",
            "server_state": "full", "load_factor": 1, "peers": 0, "network_id": 0,
            "validated_ledger": {"age": 0, "base_fee_xrp": BASE_FEE / 1e6, "hash": lg.ledger_hash,
                                 "reserve_base_xrp": RESERVE_BASE / 1e6, "reserve_inc_xrp": RESERVE_INC / 1e6,
                                 "seq": lg.validated_index},
            "validation_quorum": 0}}

    def cmd_fee(self, client, req) -> dict[str, Any]:
        drops = str(BASE_FEE)
        return {"current_ledger_size": "0", "current_queue_size": "0",
                "drops": {"base_fee": drops, "median_fee": drops, "minimum_fee": drops, "open_ledger_fee": drops},
                "expected_ledger_size": "1000", "ledger_current_index": self.ledger.current_index,
                "levels": {"median_level": "256", "minimum_level": "256", "open_ledger_level": "256",
                           "reference_level": "256"}, "max_queue_size": "2000"}

    def _where(self, req) -> dict[str, Any]:
        lg = self.ledger
        if _validated(req):
            return {"ledger_index": lg.validated_index, "ledger_hash": lg.ledger_hash, "validated": True}
        return {"ledger_current_index": lg.current_index, "validated": False}

    def cmd_account_info(self, client, req) -> dict[str, Any]:
        address = req.get("account")
        if not isinstance(address, str):
            raise RpcError("invalidParams", "Missing field 'account'.")
        acct = self.ledger.account(address, _validated(req))
        if acct is None:
            raise RpcError("actNotFound", "Account not found.")
        return dict(self._where(req), account_data=acct.json())

    def cmd_account_channels(self, client, req) -> dict[str, Any]:
        address = req.get("account")
        if not isinstance(address, str):
            raise RpcError("invalidParams", "Missing field 'account'.")
        validated = _validated(req) if "ledger_index" in req else True
        if self.ledger.account(address, validated) is None:
            raise RpcError("actNotFound", "Account not found.")
        where = self._where({"ledger_index": "validated" if validated else "current"})
        channels = self.ledger.channels_of(address, req.get("destination_account"), validated)
        return dict(where, account=address, channels=[c.account_channels_json() for c in channels])

    def cmd_ledger_entry(self, client, req) -> dict[str, Any]:
        index = req.get("payment_channel") or req.get("index")
        if not isinstance(index, str):
            raise RpcError("invalidParams", "the double's ledger_entry reads PayChannels: give payment_channel")
        validated = _validated(req) if "ledger_index" in req else True
        chan = self.ledger.channel(index, validated)
        if chan is None:
            raise RpcError("entryNotFound", "Entry not found.")
        where = self._where({"ledger_index": "validated" if validated else "current"})
        return dict(where, index=chan.index, node=chan.json())

    def cmd_submit(self, client, req) -> dict[str, Any]:
        blob = req.get("tx_blob")
        if not isinstance(blob, str):
            # sign-and-submit mode (tx_json + secret) would need the secret on the server: refused.
            raise RpcError("invalidParams", "the rippled double accepts only signed tx_blob submissions")
        self._last_submit = self._clock.seconds()
        return self.ledger.submit(blob)

    def cmd_tx(self, client, req) -> dict[str, Any]:
        record = self.ledger.txs.get(str(req.get("transaction", "")).upper())
        if record is None:
            raise RpcError("txnNotFound", "Transaction not found.")
        return record.json()

    def cmd_subscribe(self, client, req) -> dict[str, Any]:
        streams, accounts = req.get("streams", []), req.get("accounts", [])
        unknown = set(streams) - {"ledger", "transactions"}
        if unknown:
            raise RpcError("malformedStream", f"the double streams only ledger and transactions, not {sorted(unknown)}")
        client.streams.update(streams)
        client.accounts.update(accounts)
        return self._ledger_info() if "ledger" in streams else {}

    def cmd_unsubscribe(self, client, req) -> dict[str, Any]:
        client.streams.difference_update(req.get("streams", []))
        client.accounts.difference_update(req.get("accounts", []))
        return {}

    def cmd_ledger_accept(self, client, req) -> dict[str, Any]:
        advance = req.get("advance", 0)
        if not isinstance(advance, int) or advance < 0:
            raise RpcError("invalidParams", "advance: whole seconds ≥ 0")
        return {"ledger_current_index": self.ledger_accept(advance) + 1}
