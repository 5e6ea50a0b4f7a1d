"""Edit browser: source | instruction | rationale | output | target, one page at a time.

Filters (category, family, hold-out, verdict, outcome, a metric range, text) and the sort order
run in SQL; only the current page's rows and images are fetched, so a 10,000-sample evaluation
paints as fast as a 40-sample one. A second evaluation shows the same samples' outputs beside
the first (the same sample across two models); "Details" opens a sample in full: every metric,
the sample in every evaluation that has it, its reviews and download links.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, cast

import streamlit as st

from dashboard import charts, reviews, samples
from dashboard.images import ImageProblem
from dashboard.queries import evaluations
from dashboard.records import (
    NO_VERDICT,
    SORT_BY_ID,
    EvaluationInfo,
    Facets,
    Outcome,
    SampleFilter,
    SampleRow,
)
from dashboard.ui import (
    VERDICT_LABELS,
    Context,
    context,
    fmt_time,
    guarded,
    md_escape,
    metrics_text,
    query_int,
    show_chart,
    show_image,
    sidebar_sources,
    stop_if_empty,
    verdict_text,
)

DETAIL = "eb_detail"
PAGE = "eb_page"
SHORT_LABELS = {k: v.removeprefix("nearest: ") for k, v in VERDICT_LABELS.items()}
OUTCOMES: dict[str, str] = {
    "any": "any",
    "correct": "correct only",
    "incorrect": "wrong only",
    "excluded": "excluded (not verifiable)",
}


@st.cache_data(ttl=60, show_spinner=False, max_entries=64)
def _facets(_ctx: Context, db_url: str, evaluation_id: int) -> Facets:
    return samples.facets(_ctx.db, evaluation_id)


@st.cache_data(ttl=60, show_spinner=False, max_entries=256)
def _range(
    _ctx: Context, db_url: str, evaluation_id: int, metric: str
) -> tuple[float, float] | None:
    return samples.metric_range(_ctx.db, evaluation_id, metric)


def _pick(evals: list[EvaluationInfo], label: str, key: str, default: int | None) -> int | None:
    by_id = {e.id: e for e in evals}
    if key not in st.session_state or st.session_state[key] not in by_id:
        st.session_state[key] = default if default in by_id else evals[0].id
    return st.selectbox(label, list(by_id), key=key, format_func=lambda i: by_id[i].title)


def _filters(ctx: Context, ev: EvaluationInfo) -> SampleFilter:
    f = _facets(ctx, ctx.sources.db_url, ev.id)
    with st.sidebar:
        st.subheader("Filters")
        cats = st.multiselect("Category", f.categories, key=f"eb_cat_{ev.id}")
        fams = st.multiselect("Family", f.families, key=f"eb_fam_{ev.id}") if f.families else []
        holds = st.multiselect("Hold-out", f.holdouts, key=f"eb_hold_{ev.id}") if f.holdouts else []
        verdicts = st.multiselect(
            "Verdict",
            f.verdicts,
            key=f"eb_verdict_{ev.id}",
            format_func=lambda v: VERDICT_LABELS.get(v, v),
        )
        outcome = cast(
            Outcome,
            st.radio(
                "Outcome",
                list(OUTCOMES),
                key=f"eb_outcome_{ev.id}",
                format_func=OUTCOMES.__getitem__,
                horizontal=True,
            )
            or "any",
        )
        search = st.text_input("Instruction or id contains", key=f"eb_search_{ev.id}")
        metric = st.selectbox(
            "Metric range", [None, *f.metrics], key=f"eb_metric_{ev.id}", format_func=_none("—")
        )
        lo = hi = None
        if metric is not None:
            bounds = _range(ctx, ctx.sources.db_url, ev.id, metric)
            if bounds is None:
                st.caption(f"no sample has {metric}")
            elif bounds[0] < bounds[1]:
                chosen = st.slider(
                    metric,
                    min_value=bounds[0],
                    max_value=bounds[1],
                    value=bounds,
                    key=f"eb_range_{ev.id}_{metric}",
                )
                if tuple(chosen) != bounds:
                    lo, hi = float(chosen[0]), float(chosen[1])
            else:
                st.caption(f"every sample has {metric} = {bounds[0]:.4g}")
        sort = st.selectbox(
            "Sort by",
            [SORT_BY_ID, *f.metrics],
            key=f"eb_sort_{ev.id}",
            format_func=lambda s: "sample id" if s == SORT_BY_ID else s,
        )
        desc = st.toggle("Descending", key=f"eb_desc_{ev.id}")
    return SampleFilter(
        categories=tuple(cats),
        families=tuple(fams),
        holdouts=tuple(holds),
        verdicts=tuple(verdicts),
        outcome=outcome,
        metric=metric,
        metric_min=lo,
        metric_max=hi,
        search=search,
        sort=sort,
        descending=desc,
    )


def _none(text: str) -> Any:
    return lambda v: text if v is None else str(v)


def _detail(ctx: Context, row: SampleRow, metric_names: tuple[str, ...]) -> None:
    side = ctx.settings.image_px * 2
    with st.container(border=True):
        top = st.columns([6, 1])
        top[0].markdown(
            f"**{row.sample_id}** · {row.category}"
            + (f" · {row.family}" if row.family else "")
            + (f" · hold-out {row.holdout}" if row.holdout else "")
        )
        if top[1].button("Close", key=f"close-{row.id}"):
            st.session_state.pop(DETAIL, None)
            st.rerun()
        st.markdown(f"**Instruction.** {md_escape(row.instruction)}")
        st.markdown(f"**Rationale.** {md_escape(row.rationale) or '—'}")
        st.markdown(f"**Automatic verdict.** {verdict_text(row.verdict, row.correct)}")
        uris = {k: str(v) for k, v in row.image_uris.items() if v}
        imgs = ctx.images.get_many(uris.values(), side)
        cols = st.columns(3)
        for col, (kind, title) in zip(
            cols, (("src", "source"), ("output", "output"), ("tgt", "target")), strict=True
        ):
            with col:
                uri = uris.get(kind)
                show_image(imgs.get(uri) if uri else None, title)
                if uri:
                    _download(ctx, uri, f"{row.sample_id}-{kind}.png", key=f"dl-{row.id}-{kind}")
        st.markdown("**Per-sample metrics**")
        known = [m for m in metric_names if m in row.metrics]
        rest = sorted(set(row.metrics) - set(known))
        st.dataframe(
            [{"metric": m, "value": row.metrics[m]} for m in [*known, *rest]],
            hide_index=True,
        )
        others = [(e, s) for e, s in samples.sample_across(ctx.db, row.sample_id) if s.id != row.id]
        if others:
            st.markdown("**The same sample in other evaluations**")
            outs = ctx.images.get_many(
                [str(s.image_uris["output"]) for _, s in others if s.image_uris.get("output")],
                ctx.settings.image_px,
            )
            across = st.columns(min(4, len(others)))
            for i, (e, s) in enumerate(others):
                with across[i % len(across)]:
                    out_uri = s.image_uris.get("output")
                    show_image(outs.get(str(out_uri)) if out_uri else None, e.label)
                    st.caption(verdict_text(s.verdict, s.correct))
        history = reviews.reviews_of_sample(ctx.db, row.id)
        st.markdown(f"**Reviews** ({len(history)})")
        if history:
            st.dataframe(
                [
                    {
                        "when": fmt_time(r.created_at),
                        "reviewer": r.reviewer,
                        "verdict": r.verdict,
                        "note": r.note or "",
                    }
                    for r in history
                ],
                hide_index=True,
            )
        st.page_link(
            "views/review.py",
            label="Review this sample",
            query_params={"eval": str(row.evaluation_id), "sample": row.sample_id},
        )


def _download(ctx: Context, uri: str, name: str, *, key: str) -> None:
    url = ctx.images.url(uri)
    if url is not None:
        st.link_button("Download", url)
        return
    data = ctx.images.get(uri, None)
    if isinstance(data, bytes):
        st.download_button("Download", data, file_name=name, mime="image/png", key=key)


def _grid(
    ctx: Context,
    rows: list[SampleRow],
    other: dict[str, SampleRow],
    other_label: str | None,
    metric_names: tuple[str, ...],
) -> None:
    side = ctx.settings.image_px
    uris = [str(u) for r in rows for u in r.image_uris.values() if u]
    uris += [str(s.image_uris["output"]) for s in other.values() if s.image_uris.get("output")]
    imgs = ctx.images.get_many(uris, side)

    def img(r: SampleRow | None, kind: str) -> bytes | ImageProblem | None:
        uri = r.image_uris.get(kind) if r is not None else None
        return imgs.get(str(uri)) if uri else None

    widths = [1.0, 1.4, 1.4, 1.0, 1.0] + ([1.0] if other_label else [])
    titles = ["source", "instruction", "rationale", "output", "target"]
    titles += [f"output · {other_label}"] if other_label else []
    for col, title in zip(st.columns(widths), titles, strict=True):
        col.markdown(f"**{title}**")
    for r in rows:
        cols = st.columns(widths, vertical_alignment="top")
        with cols[0]:
            show_image(img(r, "src"))
        with cols[1]:
            st.markdown(md_escape(r.instruction))
            meta = " · ".join(x for x in (r.sample_id, r.category, r.family, r.holdout) if x)
            st.caption(meta)
        with cols[2]:
            st.markdown(md_escape(r.rationale) or "—")
            st.caption(metrics_text(r.metrics, metric_names))
        with cols[3]:
            show_image(img(r, "output"))
            st.caption(verdict_text(r.verdict, r.correct))
        with cols[4]:
            show_image(img(r, "tgt"))
            if st.button("Details", key=f"detail-{r.id}"):
                st.session_state[DETAIL] = r.id
        if other_label:
            with cols[5]:
                o = other.get(r.sample_id)
                if o is None:
                    st.caption("not in that evaluation")
                else:
                    show_image(img(o, "output"))
                    st.caption(verdict_text(o.verdict, o.correct))
        if st.session_state.get(DETAIL) == r.id:
            _detail(ctx, r, metric_names)
        st.divider()


def main() -> None:
    """The page."""
    st.title("Edit browser")
    ctx = context()
    sidebar_sources(ctx)
    stop_if_empty(ctx)
    evals = evaluations(ctx.db)
    if not evals:
        st.info(
            "No evaluations recorded yet: the pipeline records one per evaluated model "
            "(`make demo`, or `reasonbrain pipeline run`)."
        )
        st.stop()
    by_id = {e.id: e for e in evals}
    with st.sidebar:
        chosen = _pick(evals, "Evaluation", "eb_eval", query_int("eval"))
        others = [e for e in evals if e.id != chosen]
        cmp_id = st.selectbox(
            "Compare with",
            [None, *[e.id for e in others]],
            key="eb_cmp",
            format_func=lambda i: "—" if i is None else by_id[i].title,
        )
    assert chosen is not None
    ev = by_id[chosen]
    st.query_params["eval"] = str(ev.id)
    f = _filters(ctx, ev)
    # a new filter is a new pagination widget, so it starts again at page 1
    page_key = PAGE + hashlib.sha1(repr((ev.id, f)).encode()).hexdigest()[:12]
    total = samples.count_samples(ctx.db, ev.id, f)
    head, chart = st.columns([2, 1])
    with head:
        st.subheader(ev.label)
        facts = [f"split {ev.split}", f"{ev.n_samples or '?'} samples", fmt_time(ev.created_at)]
        if ev.dataset_version:
            facts.append(f"dataset {ev.dataset_version}")
        st.caption(" · ".join(facts))
        if ev.headline is not None and ev.primary:
            st.metric(ev.primary, ev.headline.text())
        st.markdown(f"**{total:,}** matching samples")
    if total == 0:
        st.info("No sample matches these filters.")
        return
    size = ctx.settings.page_size
    pages = max(1, math.ceil(total / size))
    page = st.pagination(pages, key=page_key) if pages > 1 else 1
    rows = samples.page_samples(ctx.db, ev.id, f, page=page, page_size=size)
    st.caption(
        f"page {page} of {pages} · samples {(page - 1) * size + 1}–"
        f"{(page - 1) * size + len(rows)} of {total:,}"
    )
    other = samples.samples_by_id(ctx.db, cmp_id, [r.sample_id for r in rows]) if cmp_id else {}
    metric_names = _facets(ctx, ctx.sources.db_url, ev.id).metrics
    _grid(ctx, rows, other, by_id[cmp_id].label if cmp_id else None, metric_names)
    with chart:  # filled after the grid, so the rows paint while the chart library loads
        vc = samples.verdict_counts(ctx.db, ev.id, f)
        if vc:
            show_chart(charts.verdict_counts(vc, SHORT_LABELS))
    if NO_VERDICT in f.verdicts:
        st.caption("'no verdict': samples without a ReasonSynth verifier outcome.")


guarded(main)
