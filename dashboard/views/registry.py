"""Registry: versions, aliases, lineage, files with download links (presigned for S3), the
promotion gate's decisions, and promote / demote behind a confirmation step.

Alias moves go through :class:`reasonbrain.registry.api.Registry` — the same validation,
transaction and locking as ``reasonbrain registry promote`` / ``demote``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.queries import evaluations_of, model_versions, promotions
from dashboard.records import VersionRow
from dashboard.ui import (
    Context,
    can_write,
    context,
    fmt_size,
    fmt_time,
    guarded,
    sidebar_sources,
    stop_if_empty,
)
from reasonbrain.config import get_settings
from reasonbrain.errors import ReasonBrainError
from reasonbrain.registry.api import Registry

PENDING = "rg_pending"
FLASH = "rg_flash"
STANDARD_ALIASES = ("production", "staging")
LINEAGE_FACTS = (
    ("run", "ray_run_name"),
    ("flow run", "flow_run_id"),
    ("dataset version", "dataset_version"),
    ("dataset path", "dataset_path"),
    ("git commit", "git_commit"),
    ("git dirty", "git_dirty"),
    ("params hash", "params_hash"),
    ("run URI", "run_uri"),
    ("source", "source"),
)


def _registry(ctx: Context) -> Registry:
    return Registry(ctx.db, ctx.images.store, get_settings().home.resolve() / "cache" / "models")


def _holder(versions: list[VersionRow], name: str, alias: str) -> VersionRow | None:
    return next((v for v in versions if v.name == name and alias in v.aliases), None)


def _files(ctx: Context, mv: VersionRow) -> None:
    rows: list[dict[str, Any]] = []
    for f in mv.files:
        uri = f"{mv.store_uri.rstrip('/')}/{f.get('path', '')}"
        rows.append(
            {
                "file": f.get("path"),
                "size": fmt_size(int(f.get("size", 0))),
                "sha256": str(f.get("sha256", ""))[:16],
                "download": ctx.images.url(uri) or "",
            }
        )
    presigned = any(r["download"] for r in rows)
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "download": st.column_config.LinkColumn("download", display_text="link (1 h)")
        }
        if presigned
        else None,
        column_order=None if presigned else ["file", "size", "sha256"],
    )
    if not presigned:
        st.caption(f"Files live under `{mv.store_uri}` (a local store: no download links).")
    st.code(f"reasonbrain registry pull {mv.ref} --out models/{mv.name}-v{mv.version}", "bash")


def _actions(ctx: Context, versions: list[VersionRow], mv: VersionRow) -> None:
    st.subheader("Aliases")
    if mv.archived:
        st.caption("Archived versions cannot be promoted.")
    if not can_write(ctx, "move aliases", key="registry"):
        return
    c1, c2 = st.columns([2, 1])
    choice = c1.selectbox("Alias", [*STANDARD_ALIASES, "other…"], key="rg_alias")
    alias = (
        c1.text_input("Alias name", key="rg_alias_other").strip()
        if choice == "other…"
        else str(choice)
    )
    c2.write("")
    if c2.button(f"Promote {mv.ref}…", key="rg_promote", disabled=mv.archived or not alias):
        st.session_state[PENDING] = ("promote", mv.ref, mv.name, alias)
    for held in mv.aliases:
        if st.button(f"Demote {mv.name}@{held}…", key=f"rg_demote_{held}"):
            st.session_state[PENDING] = ("demote", mv.ref, mv.name, held)
    pending = st.session_state.get(PENDING)
    if not pending or pending[1] != mv.ref:
        return
    action, ref, name, alias = pending
    current = _holder(versions, name, alias)
    if action == "promote" and current is not None and current.ref == ref:
        st.info(f"{name}@{alias} already points at {ref}.")
        st.session_state.pop(PENDING, None)
        return
    if action == "promote":
        now = f"now {current.ref}" if current is not None else "not set yet"
        question = f"Point **{name}@{alias}** at **{ref}** ({now})?"
    else:
        question = (
            f"Remove **{name}@{alias}** (now {ref})? Anything that loads "
            f"`registry://{name}@{alias}` will fail until the alias is set again."
        )
    st.warning(question)
    ok, cancel = st.columns(2)
    if ok.button("Confirm", key="rg_confirm", type="primary"):
        st.session_state.pop(PENDING, None)
        try:
            reg = _registry(ctx)
            if action == "promote":
                moved = reg.promote(ref, alias)
                st.session_state[FLASH] = ("ok", f"{name}@{alias} → {moved.ref}")
            else:
                reg.demote(name, alias)
                st.session_state[FLASH] = ("ok", f"removed {name}@{alias} (was {ref})")
        except ReasonBrainError as err:
            st.session_state[FLASH] = ("error", err.one_line())
        st.rerun()
    if cancel.button("Cancel", key="rg_cancel"):
        st.session_state.pop(PENDING, None)
        st.rerun()


def main() -> None:
    """The page."""
    st.title("Registry")
    ctx = context()
    sidebar_sources(ctx)
    stop_if_empty(ctx)
    flash = st.session_state.pop(FLASH, None)
    if flash is not None:
        (st.success if flash[0] == "ok" else st.error)(flash[1])
    archived = st.toggle("Show archived versions", key="rg_archived")
    versions = model_versions(ctx.db, include_archived=archived)
    if not versions:
        st.info("No model registered yet (`make demo`, or `reasonbrain registry register`).")
        st.stop()
    st.dataframe(
        [
            {
                "model": v.name,
                "version": v.version,
                "aliases": ", ".join(v.aliases),
                "created": fmt_time(v.created_at),
                "size": fmt_size(v.size_bytes),
                "dataset": v.lineage.get("dataset_version") or v.lineage.get("dataset") or "",
                "git": str(v.lineage.get("git_commit") or "")[:10],
                "archived": "yes" if v.archived else "",
            }
            for v in versions
        ],
        hide_index=True,
    )
    by_ref = {v.ref: v for v in versions}
    ref = st.selectbox("Version", list(by_ref), key="rg_ref")
    mv = by_ref[str(ref)]
    st.header(mv.ref + (f" · {', '.join(mv.aliases)}" if mv.aliases else ""))
    if mv.description:
        st.caption(mv.description)
    facts = [(label, mv.lineage.get(key)) for label, key in LINEAGE_FACTS]
    facts = [("sha256", mv.sha256[:16]), ("stored at", mv.store_uri)] + [
        (k, v) for k, v in facts if v not in (None, "")
    ]
    st.dataframe([{"": k, "value": str(v)} for k, v in facts], hide_index=True)
    tabs = st.tabs(["Lineage (all)", "Files", "Evaluations", "Promotion decisions"])
    with tabs[0]:
        st.json(mv.lineage, expanded=1)
    with tabs[1]:
        _files(ctx, mv)
    with tabs[2]:
        evals = evaluations_of(ctx.db, mv.id)
        if evals:
            st.dataframe(
                [
                    {
                        "evaluation": e.title,
                        "headline": f"{e.primary} {e.headline.text()}"
                        if e.headline and e.primary
                        else "",
                        "recorded": fmt_time(e.created_at),
                    }
                    for e in evals
                ],
                hide_index=True,
            )
        else:
            st.caption("Not evaluated yet.")
    with tabs[3]:
        decisions = promotions(ctx.db, name=mv.name)
        if decisions:
            st.dataframe(
                [
                    {
                        "when": fmt_time(p.created_at),
                        "candidate": p.candidate,
                        "decision": p.decision,
                        "vs": p.incumbent or "baselines",
                        "difference": p.difference,
                        "CI": f"[{p.ci_low:+.3f}, {p.ci_high:+.3f}]"
                        if p.ci_low is not None and p.ci_high is not None
                        else "",
                        "reason": p.reason,
                    }
                    for p in decisions
                ],
                hide_index=True,
            )
        else:
            st.caption("The promotion gate has not judged this model yet.")
    _actions(ctx, versions, mv)


guarded(main)
