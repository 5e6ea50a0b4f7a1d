"""Review: accept / reject / flag each sample with a note, under the reviewer's name; progress
per evaluation; agreement between reviewers and with the automatic verdict; JSONL export.

The queue walks an evaluation's samples (optionally only the automatic failures or successes)
that *you* have not judged yet, in sample-id order; a link from the edit browser opens one
sample directly. Every verdict is a new ``reviews`` row (history kept; the newest counts).
"""

from __future__ import annotations

from typing import cast

import streamlit as st

from dashboard import reviews
from dashboard.images import ImageProblem
from dashboard.queries import evaluations
from dashboard.records import EvaluationInfo, Outcome, SampleFilter, SampleRow
from dashboard.samples import samples_by_id
from dashboard.ui import (
    Context,
    can_write,
    context,
    fmt_time,
    guarded,
    md_escape,
    query_int,
    show_image,
    sidebar_sources,
    stop_if_empty,
    verdict_text,
)
from reasonbrain.errors import ReasonBrainError

LAST = "rv_last"
FLASH = "rv_flash"
QUEUES: dict[str, str] = {
    "any": "every sample",
    "incorrect": "automatic failures",
    "correct": "automatic successes",
    "excluded": "not verifiable",
}


def _drop_sample_link() -> None:
    st.query_params.pop("sample", None)


def _sample_to_review(ctx: Context, ev: EvaluationInfo, reviewer: str) -> SampleRow | None:
    wanted = st.query_params.get("sample")
    if wanted:
        row = samples_by_id(ctx.db, ev.id, [wanted]).get(wanted)
        if row is not None:
            return row
        st.caption(f"Sample {wanted!r} is not in this evaluation; showing the queue.")
    queue = cast(
        Outcome,
        st.radio(
            "Queue",
            list(QUEUES),
            key=f"rv_queue_{ev.id}",
            format_func=QUEUES.__getitem__,
            horizontal=True,
        )
        or "any",
    )
    return reviews.next_unreviewed(
        ctx.db, ev.id, reviewer, SampleFilter(outcome=queue), after=st.session_state.get(LAST)
    )


def _review_form(ctx: Context, row: SampleRow, reviewer: str) -> None:
    st.markdown(
        f"**{row.sample_id}** · {row.category}" + (f" · {row.family}" if row.family else "")
    )
    st.markdown(f"**Instruction.** {md_escape(row.instruction)}")
    st.markdown(f"**Rationale.** {md_escape(row.rationale) or '—'}")
    uris = {k: str(v) for k, v in row.image_uris.items() if v}
    imgs = ctx.images.get_many(uris.values(), ctx.settings.image_px * 2)

    def img(kind: str) -> bytes | ImageProblem | None:
        return imgs.get(uris[kind]) if kind in uris else None

    c = st.columns(3)
    with c[0]:
        show_image(img("src"), "source")
    with c[1]:
        show_image(img("output"), "output")
    with c[2]:
        show_image(img("tgt"), "target")
    st.caption(f"Automatic verdict: {verdict_text(row.verdict, row.correct)}")
    with st.form(f"review-{row.id}", clear_on_submit=True):
        note = st.text_area("Note (optional)", key=f"rv_note_{row.id}", max_chars=reviews.MAX_NOTE)
        b = st.columns(4)
        clicked = None
        if b[0].form_submit_button("Accept", type="primary", key="rv_accept"):
            clicked = "accept"
        if b[1].form_submit_button("Reject", key="rv_reject"):
            clicked = "reject"
        if b[2].form_submit_button("Flag", key="rv_flag"):
            clicked = "flag"
        skip = b[3].form_submit_button("Skip", key="rv_skip")
    if clicked is not None:
        try:
            saved = reviews.add_review(ctx.db, row.id, clicked, reviewer, note)
        except ReasonBrainError as err:
            st.error(err.one_line())
            return
        st.session_state[FLASH] = f"saved: {saved.verdict} on {saved.sample_id}"
    if clicked is not None or skip:
        st.session_state[LAST] = row.sample_id
        st.query_params.pop("sample", None)
        st.rerun()


def _agreement(ctx: Context, ev: EvaluationInfo) -> None:
    pairs, autos = reviews.agreement(ctx.db, ev.id)
    st.subheader("Agreement")
    if not pairs and not autos:
        st.caption("Needs reviews: two reviewers on the same samples, or verifiable samples.")
        return

    def k(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    if pairs:
        st.markdown("Between reviewers (samples both judged)")
        st.dataframe(
            [
                {
                    "reviewers": f"{p.a} · {p.b}",
                    "samples": p.n,
                    "agreement": f"{p.agreement:.0%}",
                    "Cohen's κ": k(p.kappa),
                }
                for p in pairs
            ],
            hide_index=True,
        )
    if autos:
        st.markdown("With the automatic verdict (accept ↔ correct; flags left out)")
        st.dataframe(
            [
                {
                    "reviewer": a.reviewer,
                    "samples": a.n,
                    "agreement": f"{a.agreement:.0%}",
                    "Cohen's κ": k(a.kappa),
                }
                for a in autos
            ],
            hide_index=True,
        )


def main() -> None:
    """The page."""
    st.title("Review")
    ctx = context()
    sidebar_sources(ctx)
    stop_if_empty(ctx)
    evals = evaluations(ctx.db)
    if not evals:
        st.info("No evaluations recorded yet (`make demo`).")
        st.stop()
    by_id = {e.id: e for e in evals}
    linked = query_int("eval")
    if linked in by_id and (st.query_params.get("sample") or "rv_eval" not in st.session_state):
        st.session_state["rv_eval"] = linked  # a link from the edit browser wins
    with st.sidebar:
        chosen = st.selectbox(
            "Evaluation",
            list(by_id),
            key="rv_eval",
            format_func=lambda i: by_id[i].title,
            on_change=_drop_sample_link,
        )
        reviewer = st.text_input("Your name (required to review)", key="rv_reviewer").strip()
    ev = by_id[int(chosen)]
    st.query_params["eval"] = str(ev.id)
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(flash)

    prog = reviews.progress(ctx.db, ev.id)
    st.progress(
        prog.share,
        text=f"{ev.label}: {prog.n_reviewed:,} of {prog.n_samples:,} samples reviewed "
        f"({prog.share:.0%})",
    )
    if prog.by_reviewer:
        st.caption(
            " · ".join(f"{who}: {n}" for who, n in prog.by_reviewer.items())
            + " — verdicts: "
            + ", ".join(f"{v} {n}" for v, n in prog.by_verdict.items())
        )

    st.subheader("Next sample")
    if not reviewer:
        st.info("Type your name in the sidebar to start reviewing.")
    elif can_write(ctx, "save reviews", key="review"):
        row = _sample_to_review(ctx, ev, reviewer)
        if row is None:
            st.success(f"Nothing left in this queue for {reviewer}.")
        else:
            _review_form(ctx, row, reviewer)

    _agreement(ctx, ev)

    st.subheader("Reviews")
    recent = reviews.recent_reviews(ctx.db, ev.id, limit=50)
    if recent:
        st.dataframe(
            [
                {
                    "when": fmt_time(r.created_at),
                    "sample": r.sample_id,
                    "reviewer": r.reviewer,
                    "verdict": r.verdict,
                    "note": r.note or "",
                }
                for r in recent
            ],
            hide_index=True,
        )
    else:
        st.caption("No review yet.")
    c1, c2 = st.columns(2)
    c1.download_button(
        "Export this evaluation's reviews (JSONL)",
        lambda: reviews.export_jsonl(ctx.db, ev.id),
        file_name=f"reviews-{ev.label.replace('@', '-v')}-{ev.id}.jsonl",
        mime="application/jsonl",
        key="rv_export",
        on_click="ignore",
    )
    c2.download_button(
        "Export all reviews (JSONL)",
        lambda: reviews.export_jsonl(ctx.db, None),
        file_name="reviews-all.jsonl",
        mime="application/jsonl",
        key="rv_export_all",
        on_click="ignore",
    )


guarded(main)
