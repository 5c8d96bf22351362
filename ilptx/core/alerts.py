"""Alerts raised by the ``alert`` middleware (GET/DELETE ``/alerts`` in the admin API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["Alert", "Alerts"]


@dataclass
class Alert:
    """One alert; repeats of the same (account, triggeredBy, message) raise ``count``."""

    id: int
    account_id: str
    triggered_by: str
    message: str
    count: int
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> dict:
        """:returns: the reference's JSON shape (``accountId``, ``triggeredBy``, ISO dates)."""
        return {"id": self.id, "accountId": self.account_id, "triggeredBy": self.triggered_by,
                "message": self.message, "count": self.count,
                "createdAt": self.created_at.isoformat().replace("+00:00", "Z"),
                "updatedAt": self.updated_at.isoformat().replace("+00:00", "Z")}


class Alerts:
    """:param clock: ``IReactorTime``; ids start at the clock in ms, as the reference's."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self._alerts: dict[int, Alert] = {}
        self._next_id = int(clock.seconds() * 1000)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    def add(self, account_id: str, triggered_by: str, message: str) -> Alert:
        """Record an alert, or count a repeat of an existing one."""
        for alert in self._alerts.values():
            if (alert.account_id, alert.triggered_by, alert.message) == (account_id, triggered_by, message):
                alert.count += 1
                alert.updated_at = self._now()
                return alert
        now = self._now()
        alert = Alert(self._next_id, account_id, triggered_by, message, 1, now, now)
        self._alerts[alert.id] = alert
        self._next_id += 1
        return alert

    def list(self) -> list[Alert]:
        """:returns: alerts, oldest first."""
        return sorted(self._alerts.values(), key=lambda a: a.id)

    def dismiss(self, alert_id: int) -> bool:
        """:returns: whether there was such an alert."""
        return self._alerts.pop(alert_id, None) is not None
