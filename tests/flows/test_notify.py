"""Notifications: always logged and recorded; delivered to a webhook (a local HTTP server)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from reasonbrain.pipeline import hooks
from reasonbrain.pipeline.notify import FAILURE, PROMOTION, Event, Notifier, WebhookChannel
from reasonbrain.registry.db import open_db
from reasonbrain.registry.tables import Notification
from tests.flows.helpers import Webhook


def test_webhook_gets_slack_compatible_json_and_the_db_records_it(
    tmp_path: Path, webhook: Webhook
) -> None:
    db = open_db(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        n = Notifier(db, [WebhookChannel(webhook.url)])
        ev = Event(PROMOTION, "promoted rb@2", flow="pipeline", run_id="r1", payload={"x": 1})
        deliveries = n.send(ev)
        assert [d["channel"] for d in deliveries] == ["log", "webhook"]
        assert all(d["ok"] for d in deliveries)
        (body,) = webhook.bodies
        assert body["text"] == "[reasonbrain] promotion: promoted rb@2"
        assert (
            body["event"] == "promotion" and body["run_id"] == "r1" and body["payload"] == {"x": 1}
        )
        with db.sessions() as s:
            row = s.scalars(select(Notification)).one()
        assert row.event == PROMOTION and row.flow == "pipeline" and row.deliveries == deliveries
    finally:
        db.dispose()


def test_an_unreachable_webhook_is_recorded_not_raised_and_hides_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = open_db(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        url = "http://127.0.0.1:9/hooks/T000/SECRET-TOKEN"  # discard port: nothing listens
        deliveries = Notifier(db, [WebhookChannel(url, timeout_s=2)]).send(
            Event(FAILURE, "stage train failed")
        )
        hook = deliveries[-1]
        assert hook["channel"] == "webhook" and hook["ok"] is False
        assert "127.0.0.1:9" in hook["detail"] and "SECRET" not in hook["detail"]
        assert "SECRET" not in caplog.text
        with db.sessions() as s:
            assert s.scalars(select(Notification)).one().deliveries[-1]["ok"] is False
    finally:
        db.dispose()


def test_hooks_turn_flow_states_into_events() -> None:
    state = SimpleNamespace(name="Failed", message="DVC stage validate failed (exit 1): INVALID")
    (ev,) = hooks.failure_events("pipeline", "id-1", "lumpy-gaur", state)
    assert ev.event == FAILURE and "validate failed" in ev.message and ev.run_id == "id-1"
    result = {
        "gate": {"promoted": True, "reason": "promoted rb@2 to production: …"},
        "drops": [
            {"name": "d1", "status": "merged"},
            {"name": "d2", "status": "quarantined", "message": "validation failed: x"},
        ],
    }
    events = hooks.completion_events("ingest", "id-2", result)
    assert [e.event for e in events] == ["promotion", "quarantine"]
    assert "d2 quarantined: validation failed" in events[1].message
    assert hooks.completion_events("pipeline", "id", {"gate": {"promoted": False}}) == []
    assert hooks.completion_events("pipeline", "id", None) == []
