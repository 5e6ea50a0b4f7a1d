"""Prefect state hooks of the flows: send failures, promotions and quarantines to the notifier.

Prefect calls a hook with ``(flow, flow_run, state)`` when a flow run enters a state:

- :func:`on_failure` (failed or crashed): the flow-run row gets ``failed`` and the reason, and a
  ``failure`` notification goes out;
- :func:`on_completion`: the flow's result says what to announce — a ``promotion`` when the gate
  moved ``production``, a ``quarantine`` per drop the ``ingest`` flow quarantined.

Hooks never raise: a notification problem must not change the outcome of a run (the notifier
records where each notification went).
"""

from __future__ import annotations

import logging
from typing import Any

from reasonbrain.pipeline.notify import FAILURE, PROMOTION, QUARANTINE, Event, Notifier

log = logging.getLogger("reasonbrain.notify")


def _notifier() -> tuple[Notifier, Any]:
    """A notifier on the registry's database (``None`` database when it cannot be opened)."""
    try:
        from reasonbrain.registry.api import open_registry

        reg = open_registry()
    except Exception as err:  # the database may be the failure being reported
        log.error("notifications will not be recorded in the database: %s", err)
        return Notifier.from_settings(None), None
    return Notifier.from_settings(reg.db), reg


def failure_events(flow_name: str, run_id: str, run_name: str, state: Any) -> list[Event]:
    """The notification for a failed/crashed flow run."""
    why = " ".join(str(state.message or state.name).split())
    return [
        Event(
            FAILURE,
            f"flow run {flow_name}/{run_name} {str(state.name).lower()}: {why}",
            flow=flow_name,
            run_id=run_id,
            payload={"state": state.name, "message": why},
        )
    ]


def completion_events(flow_name: str, run_id: str, result: Any) -> list[Event]:
    """The notifications a finished flow's result calls for (promotion, quarantines)."""
    events: list[Event] = []
    if not isinstance(result, dict):
        return events
    gate = result.get("gate")
    if isinstance(gate, dict) and gate.get("promoted"):
        events.append(
            Event(PROMOTION, str(gate.get("reason")), flow=flow_name, run_id=run_id, payload=gate)
        )
    for drop in result.get("drops") or []:
        if isinstance(drop, dict) and drop.get("status") == "quarantined":
            events.append(
                Event(
                    QUARANTINE,
                    f"drop {drop.get('name')} quarantined: {drop.get('message')} "
                    f"(report: {drop.get('quarantine_uri')})",
                    flow=flow_name,
                    run_id=run_id,
                    payload=drop,
                )
            )
    return events


def _send(events: list[Event]) -> None:
    if not events:
        return
    notifier, reg = _notifier()
    try:
        for ev in events:
            notifier.send(ev)
    finally:
        if reg is not None:
            reg.close()


def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Hook for failed and crashed flow runs."""
    try:
        run_id = str(flow_run.id)
        _mark_failed(run_id, str(state.message or state.name))
        _send(failure_events(flow.name, run_id, str(flow_run.name), state))
    except Exception as err:  # pragma: no cover - hooks must not raise
        log.error("failure hook: %s", err)


def on_completion(flow: Any, flow_run: Any, state: Any) -> None:
    """Hook for completed flow runs."""
    try:
        result = state.result(raise_on_failure=False)
        _send(completion_events(flow.name, str(flow_run.id), result))
    except Exception as err:  # pragma: no cover - hooks must not raise
        log.error("completion hook: %s", err)


def _mark_failed(run_id: str, error: str) -> None:
    """Set the flow-run row to ``failed`` when the flow could not (a crash)."""
    try:
        from reasonbrain.pipeline.records import update_flow_run
        from reasonbrain.registry.api import open_registry
        from reasonbrain.registry.tables import Run

        with open_registry() as reg:
            with reg.db.sessions() as s:
                run = s.get(Run, run_id)
                still_running = run is not None and run.status == "running"
            if still_running:
                update_flow_run(reg.db, run_id, status="failed", error=error)
    except Exception as err:
        log.error("could not mark flow run %s failed: %s", run_id, err)
