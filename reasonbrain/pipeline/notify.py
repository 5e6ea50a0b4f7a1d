"""Notifications from the flows: failures, promotions, quarantined drops.

Every notification is logged and recorded in the ``notifications`` table, whatever else happens;
it is then handed to each configured :class:`Channel`. The built-in channel is a webhook
(``REASONBRAIN_NOTIFY_WEBHOOK_URL``): a JSON ``POST`` whose ``text`` field is the message, which
is what Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat …) display; the other
fields carry the event, flow, run id and details for other receivers. Delivery failures never
fail a flow: they are recorded with the notification (``deliveries``).

Other channels plug in through :class:`Notifier`'s ``channels`` argument (anything with a
``name`` and a ``deliver(event) -> str`` that raises on failure).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from reasonbrain.registry.db import Database
from reasonbrain.registry.tables import Notification, utcnow

log = logging.getLogger("reasonbrain.notify")
FAILURE, PROMOTION, QUARANTINE = "failure", "promotion", "quarantine"


@dataclass(frozen=True)
class Event:
    """What happened.

    Attributes:
        event: ``failure`` / ``promotion`` / ``quarantine`` …
        message: one or two sentences for people (what, where, what to do).
        flow: the flow's name.
        run_id: the flow run id.
        payload: details (JSON-able).
    """

    event: str
    message: str
    flow: str | None = None
    run_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The webhook body (``text`` for Slack-compatible receivers)."""
        return {
            "text": f"[reasonbrain] {self.event}: {self.message}",
            "event": self.event,
            "flow": self.flow,
            "run_id": self.run_id,
            "payload": self.payload,
        }


class Channel(Protocol):
    """Somewhere notifications go."""

    name: str

    def deliver(self, event: Event) -> str:
        """Deliver ``event``; returns a short detail, raises on failure."""


class WebhookChannel:
    """POST the event as JSON to a URL (Slack-compatible ``text`` field)."""

    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def deliver(self, event: Event) -> str:
        body = json.dumps(event.to_json(), default=str).encode()
        req = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
            return f"HTTP {r.status}"


def _where(url: str) -> str:
    """The URL without its path and query (webhook URLs embed secrets in the path)."""
    from urllib.parse import urlparse

    u = urlparse(url)
    return f"{u.scheme}://{u.hostname}" + (f":{u.port}" if u.port else "")


class Notifier:
    """Logs, records and delivers events.

    Args:
        db: the metadata database (the ``notifications`` table).
        channels: where to deliver besides the log and the database.
    """

    def __init__(self, db: Database | None, channels: list[Channel] | None = None) -> None:
        self.db = db
        self.channels = list(channels or [])

    @classmethod
    def from_settings(cls, db: Database | None) -> Notifier:
        """The channels the settings configure (``REASONBRAIN_NOTIFY_WEBHOOK_URL``)."""
        from reasonbrain.config import get_settings

        s = get_settings()
        channels: list[Channel] = []
        if s.notify_webhook_url:
            channels.append(WebhookChannel(s.notify_webhook_url, timeout_s=s.notify_timeout_s))
        return cls(db, channels)

    def send(self, event: Event) -> list[dict[str, Any]]:
        """Log, deliver and record ``event``; returns the deliveries ``[{channel, ok, detail}]``."""
        level = logging.ERROR if event.event == FAILURE else logging.WARNING
        if event.event == PROMOTION:
            level = logging.INFO
        log.log(level, "%s (%s %s): %s", event.event, event.flow, event.run_id, event.message)
        deliveries: list[dict[str, Any]] = [{"channel": "log", "ok": True, "detail": "logged"}]
        for ch in self.channels:
            try:
                deliveries.append({"channel": ch.name, "ok": True, "detail": ch.deliver(event)})
            except (OSError, urllib.error.URLError, ValueError) as err:
                detail = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
                if isinstance(ch, WebhookChannel):
                    detail = f"{detail} ({_where(ch.url)})"
                log.warning("notification not delivered to %s: %s", ch.name, detail)
                deliveries.append({"channel": ch.name, "ok": False, "detail": detail})
        if self.db is not None:
            try:
                with self.db.sessions.begin() as s:
                    s.add(
                        Notification(
                            event=event.event,
                            flow=event.flow,
                            run_id=event.run_id,
                            message=event.message,
                            payload=json.loads(json.dumps(event.payload, default=str)),
                            deliveries=deliveries,
                            created_at=utcnow(),
                        )
                    )
            except Exception as err:  # the database may be what failed: the log has it
                log.error("notification not recorded in the database: %s", err)
        return deliveries
