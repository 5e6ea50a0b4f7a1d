"""Streamlit pieces shared by the pages: the connection context, guidance, pickers, images,
the write gate and formatting.

Long-lived resources (the database engine, the image cache) are ``st.cache_resource`` singletons
keyed on their URL, so reruns and sessions reuse them; a database or store that cannot be used
is never cached, so the page recovers as soon as ``make demo`` has run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import streamlit as st
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from dashboard.access import DashboardSettings, WriteGate, configured_password, write_gate
from dashboard.connect import (
    DEMO_HINT,
    SourceProblem,
    Sources,
    open_database,
    open_object_store,
    sources,
)
from dashboard.images import ImageCache, ImageProblem
from dashboard.queries import counts
from reasonbrain.errors import ReasonBrainError
from reasonbrain.registry.db import Database

MIB = 1024 * 1024
UNLOCKED = "rb_write_unlocked"

#: the automatic verdict in words (the verifier's outcome)
VERDICT_LABELS: dict[str, str] = {
    "target": "correct",
    "no_change": "nearest: no change",
    "wrong_object": "nearest: wrong object",
    "wrong_change": "nearest: wrong change",
    "unverifiable": "unverifiable",
    "tie": "tie (counted wrong)",
    "faint_edit": "nearest the target, but too faint",
    "collateral_edit": "right edit, but the twin changed too",
    "background_changed": "right edit, but the background changed",
    "no_output": "no output (missing or unreadable prediction)",
    "none": "no verdict",
}
#: (Material icon, colour) per verdict; Streamlit bundles the icon font (no emoji font needed)
VERDICT_STYLE: dict[str, tuple[str, str]] = {
    "target": ("check_circle", "green"),
    "no_change": ("pause_circle", "gray"),
    "wrong_object": ("ads_click", "orange"),
    "wrong_change": ("cancel", "red"),
    "unverifiable": ("help", "violet"),
    "tie": ("drag_handle", "gray"),
    "faint_edit": ("opacity", "gray"),
    "collateral_edit": ("content_copy", "orange"),
    "background_changed": ("wallpaper", "red"),
    "no_output": ("hide_image", "gray"),
}


@dataclass
class Context:
    """What every page needs.

    Attributes:
        sources: where the data comes from (URLs safe to show).
        db: the metadata database.
        images: the shared image cache over the object store.
        settings: dashboard settings.
        gate: whether writes are allowed.
    """

    sources: Sources
    db: Database
    images: ImageCache
    settings: DashboardSettings
    gate: WriteGate


@st.cache_resource(show_spinner=False, max_entries=4)
def _database(url: str) -> Database:
    return open_database(url)


@st.cache_resource(show_spinner=False, max_entries=4)
def _image_cache(store_uri: str, budget_bytes: int) -> ImageCache:
    return ImageCache(open_object_store(store_uri), budget_bytes=budget_bytes)


def _secrets() -> Mapping[str, Any]:
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # no secrets.toml: StreamlitSecretNotFoundError subclasses it
        return {}


def context() -> Context:
    """The page context; shows what to do and stops the page when the sources are not usable."""
    src = sources()
    try:
        settings = DashboardSettings()
    except ValidationError as err:
        st.error(f"Invalid REASONBRAIN_DASHBOARD_* setting: {err.errors()[0]['msg']}")
        st.stop()
    try:
        db = _database(src.db_url)
        images = _image_cache(src.store_uri, settings.image_cache_mb * MIB)
    except SourceProblem as problem:
        show_problem(problem, src)
        st.stop()
    gate = write_gate(st.get_option("server.address"), configured_password(settings, _secrets()))
    return Context(src, db, images, settings, gate)


def guarded(page: Callable[[], None]) -> None:
    """Run a page; a database or store failure mid-page becomes one error line, not a trace
    (the server went away, a row holds malformed JSON, the store refused a read …)."""
    try:
        page()
    except SQLAlchemyError as err:
        first = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        st.error(f"The metadata database failed: {type(err).__name__}: {first}")
        st.caption("Reload the page; if it persists, check the database (REASONBRAIN_DB_URL).")
    except ReasonBrainError as err:
        st.error(err.one_line())


def show_problem(problem: SourceProblem, src: Sources) -> None:
    """Explain why there is nothing to show and what to run."""
    if problem.kind in ("missing", "empty"):
        st.info(f"**Nothing recorded yet.** {problem.what}.\n\nNext: {problem.fix}.")
    else:
        st.warning(f"**Cannot read the metadata database.** {problem.what}.\n\nFix: {problem.fix}.")
    st.caption(f"Database: `{src.db_display}` · store: `{src.store_uri}`")


def stop_if_empty(ctx: Context) -> None:
    """Guidance instead of empty tables when nothing has been recorded."""
    if counts(ctx.db).empty:
        st.info(
            "**Nothing recorded yet** — no models, runs or evaluations in "
            f"`{ctx.sources.db_display}`.\n\nNext: {DEMO_HINT}; then reload this page."
        )
        st.code("make demo\nreasonbrain dashboard", language="bash")
        st.stop()


def sidebar_sources(ctx: Context) -> None:
    """Where the data comes from, and the write mode, in the sidebar."""
    with st.sidebar:
        st.caption(f"Database: `{ctx.sources.db_display}`")
        st.caption(f"Store: `{ctx.sources.store_uri}`")
        mode = {"open": "writes open (loopback)", "password": "writes need the password"}
        st.caption(mode.get(ctx.gate.mode, "read-only (exposed without a password)"))


def can_write(ctx: Context, what: str, *, key: str) -> bool:
    """Whether this session may write; renders the unlock form when a password is needed."""
    if ctx.gate.mode == "open" or st.session_state.get(UNLOCKED):
        return True
    if ctx.gate.mode == "closed":
        st.info(
            f"Read-only: to {what}, this dashboard needs a password because it is not bound to "
            "127.0.0.1. Set `REASONBRAIN_DASHBOARD_PASSWORD` (or `dashboard_password` in "
            "`.streamlit/secrets.toml`) and restart it."
        )
        return False
    with st.form(f"unlock-{key}"):
        given = st.text_input(f"Password to {what}", type="password", key=f"pw-{key}")
        if st.form_submit_button("Unlock"):
            if ctx.gate.check(given):
                st.session_state[UNLOCKED] = True
                st.rerun()
            st.error("Wrong password.")
    return False


def query_int(name: str) -> int | None:
    """An integer query parameter (``None`` when absent or malformed)."""
    raw = st.query_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def show_image(data: bytes | ImageProblem | None, caption: str | None = None) -> None:
    """An image, or one quiet line saying why it cannot be shown."""
    if data is None:
        st.caption(f"{caption or 'image'}: not recorded")
    elif isinstance(data, ImageProblem):
        st.caption(
            f":orange[:material/broken_image:] {caption or 'image'} unavailable: {data.reason}"
        )
    else:
        st.image(data, caption=caption)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|$<>~])")


def md_escape(text: str | None) -> str:
    """Recorded text (instructions, rationales, reasons) shown literally in Markdown: no
    emphasis, links, HTML or ``$…$`` maths made out of what a dataset happens to contain."""
    return _MD_SPECIAL.sub(r"\\\1", text or "")


def show_chart(chart: Any) -> None:
    """An Altair chart across the column, its element tall enough for the plot's own height."""
    from dashboard.charts import container_height

    st.altair_chart(chart, width="stretch", height=container_height(chart))


def verdict_text(verdict: str | None, correct: bool | None) -> str:
    """``:green[:material/check_circle: correct]`` … (Streamlit markdown)."""
    key = verdict or "none"
    label = VERDICT_LABELS.get(key, key)
    if correct is None and key not in ("unverifiable", "none"):
        label += " (excluded)"
    icon, colour = VERDICT_STYLE.get(key, ("remove", "gray"))
    return f":{colour}[:material/{icon}: {label}]"


def metrics_text(metrics: Mapping[str, Any], names: Sequence[str], limit: int = 6) -> str:
    """``l1 0.037 · psnr 21.1 · …`` for the first ``limit`` numeric metrics in ``names`` order."""
    parts: list[str] = []
    for name in names:
        v = metrics.get(name)
        if isinstance(v, int | float) and not isinstance(v, bool):
            parts.append(f"{name} {v:.3g}")
        if len(parts) == limit:
            break
    return " · ".join(parts)


def fmt_time(t: datetime | None) -> str:
    """``2026-03-01 14:05 UTC``."""
    return t.strftime("%Y-%m-%d %H:%M UTC") if t is not None else "—"


def fmt_seconds(s: float | None) -> str:
    """``12 s`` / ``3 min 04 s`` / ``2 h 05 min``."""
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_size(n: int) -> str:
    """``1.2 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
