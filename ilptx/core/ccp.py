"""CCP route broadcasting: learning and announcing routes with peers (draft RFC, ``ilp-protocol-ccp``).

Three parts, as in the reference connector:

* :class:`CcpReceiver` (per peer we learn from): sends route control (SYNC with our last
  known routing table id and epoch) and applies the peer's route updates to its own table.
* :class:`CcpSender` (per peer we announce to): answers route control and sends route
  updates from our forwarding table's epoch log, at most 50 epochs per update, plus a
  heartbeat every ``routeBroadcastInterval`` ms.
* :class:`RouteManager`: chooses the best route per prefix -- configured > local > learned,
  then child > peer > parent, then the shorter path, then the account id -- keeps the
  switch's :class:`~ilptx.core.routing.RoutingTable` in step, and logs every change of
  next hop as a new epoch of the forwarding table (path prefixed with our address, auth
  hashed), which the senders announce.

Better than the reference: a peer's learned routes expire when its hold-down time passes
without an update; a peer that disconnects has its routes withdrawn at once; an update
that skips epochs triggers a resync (route control with our last known epoch) instead of
being ignored.
"""

from __future__ import annotations

import hashlib
import hmac as hmac_module
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from ilptx.codec.ccp import (
    CCP_PREPARE_EXPIRY_MS,
    MODE_IDLE,
    MODE_SYNC,
    Route as CcpRoute,
    RouteControlRequest,
    RouteUpdateRequest,
    control_prepare,
    update_prepare,
)
from ilptx.codec.ilp import Fulfill, decode_response, encode_packet, timestamp_at
from ilptx.errors import BadRequestError

__all__ = ["Route", "CcpReceiver", "CcpSender", "RouteManager", "RELATION_PRIORITY", "MAX_EPOCHS_PER_UPDATE"]

MAX_EPOCHS_PER_UPDATE = 50
MINIMUM_UPDATE_INTERVAL = 0.150  # s, as the reference
ROUTE_CONTROL_RETRY_INTERVAL = 30.0  # s, as the reference
CCP_REQUEST_EXPIRY_MS = CCP_PREPARE_EXPIRY_MS  # 60 s, as ilp-protocol-ccp
#: higher wins: child > peer > parent (the reference's getRelationPriority)
RELATION_PRIORITY = {"parent": 0, "peer": 1, "child": 2, "local": 3}
ZERO_TABLE_ID = bytes(16)


@dataclass(frozen=True)
class Route:
    """A route in our tables. ``next_hop`` is an account id (``""``: ourselves)."""

    next_hop: str
    path: tuple
    auth: bytes


def _expiry(clock) -> datetime:
    return timestamp_at(clock.seconds(), CCP_REQUEST_EXPIRY_MS)


def _send_peer_request(send: Callable, prepare) -> Deferred:
    """Send a CCP Prepare through a plugin; fails unless the peer fulfills."""

    def answered(raw: bytes) -> None:
        response = decode_response(raw)
        if not isinstance(response, Fulfill):
            raise BadRequestError(f"CCP message rejected: {response.code} {response.message}")

    return maybeDeferred(send, encode_packet(prepare)).addCallback(answered)


class CcpReceiver:
    """Routes learned from one peer, with its routing table id, epoch and hold-down expiry."""

    log = Logger()

    def __init__(self, account, clock) -> None:
        self.account = account
        self._clock = clock
        self.routes: dict[str, Route] = {}
        self.routing_table_id = ZERO_TABLE_ID
        self.epoch = 0
        self.expiry = 0.0
        self._retry = None

    def handle_route_update(self, update: RouteUpdateRequest) -> tuple[list[str], bool]:
        """Apply a route update.

        :returns: ``(changed prefixes, gap)``; ``gap`` is True when the update starts after
            the epoch we have, so the caller should resync.
        """
        self.expiry = max(self.expiry, self._clock.seconds() + update.hold_down_time / 1000.0)
        if update.routing_table_id != self.routing_table_id:
            self.routing_table_id = update.routing_table_id
            self.epoch = 0
        if update.from_epoch_index > self.epoch:
            return [], True
        if self.epoch > update.to_epoch_index:
            return [], False  # older than what we have
        changed = []
        for prefix in update.withdrawn_routes:
            if self.routes.pop(prefix, None) is not None:
                changed.append(prefix)
        for route in update.new_routes:
            new = Route(self.account.id, tuple(route.path), route.auth)
            if self.routes.get(route.prefix) != new:
                self.routes[route.prefix] = new
                changed.append(route.prefix)
        self.epoch = update.to_epoch_index
        return changed, False

    def clear(self) -> list[str]:
        """Forget every route (expired or disconnected); the next update starts from epoch 0."""
        prefixes = list(self.routes)
        self.routes.clear()
        self.epoch = 0
        self.routing_table_id = ZERO_TABLE_ID
        return prefixes

    def send_route_control(self) -> Optional[Deferred]:
        """Ask the peer to SYNC from our last known epoch; retried every 30 s on failure."""
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        plugin = self.account.plugin
        if not plugin.is_connected():
            return None
        request = RouteControlRequest(MODE_SYNC, self.routing_table_id, self.epoch, ())
        d = _send_peer_request(plugin.send_data, control_prepare(request, _expiry(self._clock)))

        def failed(failure) -> None:
            self.log.warn("route control to {account} failed ({error}); retrying in 30 s",
                          account=self.account.id, error=failure.getErrorMessage())
            self._retry = self._clock.callLater(ROUTE_CONTROL_RETRY_INTERVAL, self.send_route_control)

        return d.addErrback(failed)

    def stop(self) -> None:
        """Stop retrying route control."""
        if self._retry is not None and self._retry.active():
            self._retry.cancel()


class CcpSender:
    """Announces our forwarding table to one peer while it asked for SYNC."""

    log = Logger()

    def __init__(self, account, clock, manager: "RouteManager", broadcast_interval_ms: int,
                 route_expiry_ms: int) -> None:
        self.account = account
        self._clock = clock
        self._manager = manager
        self._interval = broadcast_interval_ms / 1000.0
        self._route_expiry = route_expiry_ms
        self.mode = MODE_IDLE
        self.last_known_epoch = 0
        self.last_update = 0.0
        self._timer = None

    def handle_route_control(self, control: RouteControlRequest) -> None:
        """Switch to IDLE or SYNC; resume from the peer's last known epoch of our current table."""
        self.mode = control.mode
        table = self._manager
        self.last_known_epoch = (control.last_known_epoch
                                 if control.last_known_routing_table_id == table.routing_table_id else 0)
        if self.mode == MODE_SYNC:
            self.schedule_route_update()
        else:
            self.stop()

    def schedule_route_update(self) -> None:
        """Send soon if the peer is behind, else at the next heartbeat (>= 150 ms from now)."""
        self.stop()
        if self.mode != MODE_SYNC:
            return
        if self.last_known_epoch < self._manager.current_epoch:
            delay = 0.0
        else:
            delay = self._interval - (self._clock.seconds() - self.last_update)
        self._timer = self._clock.callLater(max(MINIMUM_UPDATE_INTERVAL, delay), self._send_and_reschedule)

    def stop(self) -> None:
        """Stop the heartbeat."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _send_and_reschedule(self) -> None:
        self._timer = None
        d = self.send_single_route_update()
        if d is None:
            self.schedule_route_update()
            return

        def failed(failure) -> None:
            self.log.warn("route update to {account} failed: {error}", account=self.account.id,
                          error=failure.getErrorMessage())

        d.addErrback(failed).addBoth(lambda _: self.schedule_route_update())

    def build_route_update(self) -> RouteUpdateRequest:
        """The next update for this peer: up to 50 epochs from its last known epoch."""
        manager = self._manager
        start = self.last_known_epoch
        entries = manager.log_entries[start:start + MAX_EPOCHS_PER_UPDATE]
        to_epoch = start + len(entries)
        relation = self.account.relation
        new_routes, withdrawn = [], []
        for entry in entries:
            if entry is None:
                continue  # superseded by a later epoch
            prefix, route = entry
            if route is not None and (
                    route.next_hop == self.account.id  # don't send a peer its own routes
                    or (relation == "parent" and manager.relation_of(route.next_hop) in ("peer", "parent"))):
                route = None
            if route is None:
                withdrawn.append(prefix)
            else:
                new_routes.append(CcpRoute(prefix, route.path, route.auth, ()))
        return RouteUpdateRequest(manager.routing_table_id, manager.current_epoch, start, to_epoch,
                                  self._route_expiry, manager.address(), tuple(new_routes), tuple(withdrawn))

    def send_single_route_update(self) -> Optional[Deferred]:
        """Send :meth:`build_route_update`; on failure the peer's epoch is not advanced."""
        self.last_update = self._clock.seconds()
        plugin = self.account.plugin
        if not plugin.is_connected():
            return None
        update = self.build_route_update()
        previous, self.last_known_epoch = self.last_known_epoch, update.to_epoch_index
        d = _send_peer_request(plugin.send_data, update_prepare(update, _expiry(self._clock)))
        d.addTimeout(self._interval, self._clock)

        def failed(failure):
            self.last_known_epoch = previous
            return failure

        return d.addErrback(failed)


class RouteManager:
    """Best routes per prefix, the switch's routing table, and the forwarding table's epoch log.

    :param accounts: :class:`ilptx.core.accounts.Accounts`.
    :param routing_table: the switch's :class:`~ilptx.core.routing.RoutingTable` (kept in step).
    :param address: ``callable() -> str``, our ILP address now.
    :param clock: ``IReactorTime``.
    :param configured: ``[(target_prefix, account_id)]`` from ``routes``.
    :param routing_secret: ``routingSecret`` (base64; empty: random per process, as the reference).
    :param global_prefix: ``"g"`` (``env: production``) or ``"test"``.
    """

    log = Logger()

    def __init__(self, accounts, routing_table, address: Callable[[], str], clock, *, configured=(),
                 routing_secret: str = "", global_prefix: str = "test", broadcast_interval_ms: int = 30000,
                 route_expiry_ms: int = 45000, cleanup_interval_ms: int = 1000) -> None:
        import base64

        self.accounts = accounts
        self.table = routing_table
        self.address = address
        self._clock = clock
        self.configured = dict(configured)
        self._secret = base64.b64decode(routing_secret) if routing_secret else os.urandom(32)
        self.global_prefix = global_prefix
        self._broadcast_interval = broadcast_interval_ms
        self._route_expiry = route_expiry_ms
        self._cleanup_interval = cleanup_interval_ms / 1000.0
        self.routing_table_id = os.urandom(16)
        self.current_epoch = 0
        #: epoch → (prefix, Route | None), or None once superseded
        self.log_entries: list = []
        self.local_routes: dict[str, Route] = {}
        self.best: dict[str, Route] = {}
        self.forwarding: dict[str, tuple[int, Optional[Route]]] = {}
        self.receivers: dict[str, CcpReceiver] = {}
        self.senders: dict[str, CcpSender] = {}
        self._cleanup = None

    # -- peers ---------------------------------------------------------------------------------

    def relation_of(self, account_id: str) -> str:
        """``"local"`` for ourselves, else the account's relation."""
        if not account_id:
            return "local"
        return self.accounts.get(account_id).relation if account_id in self.accounts else "peer"

    @staticmethod
    def _exchanges(account) -> tuple[bool, bool]:
        """(send, receive) per ``sendRoutes``/``receiveRoutes``; default off for children."""
        default = account.relation != "child"
        return account.settings.get("sendRoutes", default), account.settings.get("receiveRoutes", default)

    def _sender_for(self, account) -> Optional[CcpSender]:
        sender = self.senders.get(account.id)
        if sender is None and self._exchanges(account)[0]:
            sender = self.senders[account.id] = CcpSender(account, self._clock, self, self._broadcast_interval,
                                                          self._route_expiry)
        return sender

    def _receiver_for(self, account) -> Optional[CcpReceiver]:
        receiver = self.receivers.get(account.id)
        if receiver is None and self._exchanges(account)[1]:
            receiver = self.receivers[account.id] = CcpReceiver(account, self._clock)
        return receiver

    def add_peer(self, account) -> None:
        """Start exchanging routes with ``account`` (its plugin connected): ask it to SYNC."""
        self._sender_for(account)
        receiver = self._receiver_for(account)
        if receiver is not None:
            receiver.send_route_control()

    def remove_peer(self, account_id: str) -> None:
        """The peer disconnected: withdraw its routes now and stop announcing to it."""
        sender = self.senders.pop(account_id, None)
        if sender is not None:
            sender.stop()
        receiver = self.receivers.pop(account_id, None)
        if receiver is not None:
            receiver.stop()
            if self._update_prefixes(receiver.clear()):
                self._announce()

    def handle_route_control(self, account, control: RouteControlRequest) -> None:
        """A peer asks for (or stops) route updates. :raises BadRequestError: (F00) not a CCP peer."""
        # created on demand too: the peer's message may arrive before its connect event reaches us
        sender = self._sender_for(account)
        if sender is None:
            raise BadRequestError("rejecting route control message, we are configured not to send routes to you.")
        sender.handle_route_control(control)

    def handle_route_update(self, account, update: RouteUpdateRequest) -> None:
        """Apply a peer's route update; drop routes outside the global prefix and loops through us.

        :raises BadRequestError: (F00) we do not receive routes from this account.
        """
        receiver = self._receiver_for(account)
        if receiver is None:
            raise BadRequestError("rejecting route update, we are configured not to receive routes from you.")
        own = self.address()
        gp = self.global_prefix
        kept = tuple(r for r in update.new_routes
                     if r.prefix.startswith(gp) and len(r.prefix) > len(gp) and own not in r.path)
        if kept != update.new_routes:
            update = RouteUpdateRequest(update.routing_table_id, update.current_epoch_index,
                                        update.from_epoch_index, update.to_epoch_index, update.hold_down_time,
                                        update.speaker, kept, update.withdrawn_routes)
        changed, gap = receiver.handle_route_update(update)
        if gap:
            self.log.info("route update from {account} skips epochs; resyncing", account=account.id)
            receiver.send_route_control()
        if self._update_prefixes(changed):
            self._announce()

    # -- local routes and selection -----------------------------------------------------------

    def auth(self, prefix: str) -> bytes:
        """HMAC-SHA256(routingSecret, prefix), the reference's route auth."""
        return hmac_module.new(self._secret, prefix.encode("utf-8"), hashlib.sha256).digest()

    def reload_local_routes(self) -> None:
        """Recompute our own address and the children's routes (after start or an address change)."""
        old = set(self.local_routes)
        own = self.address()
        local = {own: Route("", (), self.auth(own))}
        for account in self.accounts.by_relation("child"):
            prefix = f"{own}.{account.segment}"
            local[prefix] = Route(account.id, (), self.auth(prefix))
        self.local_routes = local
        if self._update_prefixes(list(old | set(local) | set(self.configured))):
            self._announce()

    def best_route(self, prefix: str) -> Optional[Route]:
        """configured > local > learned (child > peer > parent, shorter path, account id)."""
        hop = self.configured.get(prefix)
        if hop is not None and hop in self.accounts:
            return Route(hop, (), self.auth(prefix))
        local = self.local_routes.get(prefix)
        if local is not None:
            return local
        candidates = [r.routes[prefix] for r in self.receivers.values() if prefix in r.routes]
        if not candidates:
            return None
        return min(candidates, key=lambda r: (-RELATION_PRIORITY[self.relation_of(r.next_hop)], len(r.path),
                                              r.next_hop))

    def _announce(self) -> None:
        """Routes changed: every peer in SYNC gets an update soon (>= 150 ms), not at the heartbeat."""
        for sender in self.senders.values():
            sender.schedule_route_update()

    def _update_prefixes(self, prefixes) -> bool:
        changed = False
        for prefix in prefixes:
            changed = self._update_prefix(prefix) or changed
        return changed

    def _update_prefix(self, prefix: str) -> bool:
        new = self.best_route(prefix)
        current = self.best.get(prefix)
        if (new.next_hop if new else None) == (current.next_hop if current else None):
            if new is not None:
                self.best[prefix] = new
            return False
        if new is None:
            self.best.pop(prefix, None)
            if prefix not in self.configured:
                self.table.remove(prefix)
        else:
            self.best[prefix] = new
            if new.next_hop:  # our own address is not a route in the switch's table
                self.table.add(prefix, new.next_hop)
        self._update_forwarding(prefix, new)
        return True

    def _update_forwarding(self, prefix: str, route: Optional[Route]) -> None:
        own = self.address()
        if route is not None:
            route = Route(route.next_hop, (own,) + tuple(route.path), hashlib.sha256(route.auth).digest())
            gp = self.global_prefix
            if (not prefix.startswith(gp) or prefix == gp
                    or (prefix.startswith(own + ".") and len(route.path) == 1)):
                route = None  # not announced: outside the global prefix, default route, our own children
        current = self.forwarding.get(prefix)
        current_hop = current[1].next_hop if current and current[1] else None
        if current_hop == (route.next_hop if route else None):
            return
        epoch = self.current_epoch
        self.current_epoch += 1
        if current is not None:
            self.log_entries[current[0]] = None
        self.forwarding[prefix] = (epoch, route)
        self.log_entries.append((prefix, route))

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Load local routes and start expiring learned routes past their hold-down time."""
        self.reload_local_routes()
        if self._cleanup is None:
            self._cleanup = self._clock.callLater(self._cleanup_interval, self._expire)

    def stop(self) -> None:
        """Stop every timer."""
        if self._cleanup is not None and self._cleanup.active():
            self._cleanup.cancel()
        self._cleanup = None
        for sender in self.senders.values():
            sender.stop()
        for receiver in self.receivers.values():
            receiver.stop()

    def _expire(self) -> None:
        now = self._clock.seconds()
        changed = False
        for receiver in self.receivers.values():
            if receiver.routes and receiver.expiry < now:
                self.log.warn("routes from {account} expired (no update within the hold-down time)",
                              account=receiver.account.id)
                changed = self._update_prefixes(receiver.clear()) or changed
                receiver.send_route_control()
        if changed:
            self._announce()
        self._cleanup = self._clock.callLater(self._cleanup_interval, self._expire)

    def status(self) -> dict:
        """The reference's ``/routing`` shape."""

        def as_json(route: Optional[Route]):
            return None if route is None else {"nextHop": route.next_hop, "path": " ".join(route.path)}

        return {
            "routingTableId": _uuid(self.routing_table_id),
            "currentEpoch": self.current_epoch,
            "localRoutingTable": {p: as_json(r) for p, r in sorted(self.best.items())},
            "forwardingRoutingTable": {p: as_json(r) for p, (_, r) in sorted(self.forwarding.items())},
            "routingLog": [{"prefix": e[0], "route": as_json(e[1]), "epoch": i}
                           for i, e in enumerate(self.log_entries) if e is not None],
            "peers": {
                account_id: {
                    "send": ({"epoch": s.last_known_epoch, "mode": "MODE_SYNC" if s.mode == MODE_SYNC else "MODE_IDLE"}
                             if (s := self.senders.get(account_id)) else None),
                    "receive": ({"routingTableId": _uuid(r.routing_table_id), "epoch": r.epoch}
                                if (r := self.receivers.get(account_id)) else None),
                }
                for account_id in sorted(set(self.senders) | set(self.receivers))
            },
        }


def _uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
