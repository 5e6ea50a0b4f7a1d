"""Every dashboard page under ``streamlit.testing.v1.AppTest``: with no database, an empty one,
and populated fixtures on SQLite + ``file://`` and PostgreSQL + ``s3://``; the review round trip
(written, read back, exported), a promotion and a demotion behind their confirmation, and the
write gate when the server is exposed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, N_SAMPLES, PAGES, DashEnv

UseEnv = Callable[[DashEnv], DashEnv]


def run_page(page: str, at: AppTest | None = None, *, timeout: float = 90) -> AppTest:
    """Open ``page`` (a fresh session unless ``at`` is given) and run it."""
    if at is None:  # not `at or …`: an AppTest with no elements yet is falsy (it has __len__)
        at = AppTest.from_file(str(APP), default_timeout=timeout)
    return at.switch_page(PAGES[page]).run()


def assert_clean(at: AppTest) -> None:
    """No exception and no error box."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest) -> str:
    """Every markdown, caption, info and success text on the page, joined."""
    parts: list[Any] = []
    for kind in (at.markdown, at.caption, at.info, at.success, at.warning, at.subheader):
        parts += [e.value for e in kind]
    return "\n".join(str(p) for p in parts)


def frames(at: AppTest) -> list[Any]:
    """The page's dataframes as pandas frames."""
    return [d.value for d in at.dataframe]


def charts(at: AppTest) -> list[Any]:
    """The page's Vega-Lite charts."""
    return list(at.get("vega_lite_chart"))


def db_of(env: DashEnv) -> Any:
    from reasonbrain.registry.db import open_db

    return open_db(env.db_url, auto_upgrade=False)


def registry_of(env: DashEnv, db: Any) -> Any:
    from reasonbrain.registry.api import Registry
    from reasonbrain.registry.store import open_store

    return Registry(db, open_store(env.store_uri), Path(env.store_uri.removeprefix("file://")))


# ---------------------------------------------------------------------- nothing recorded
@pytest.mark.parametrize("page", list(PAGES))
def test_pages_without_a_database_say_what_to_run(
    page: str, missing_sqlite: DashEnv, use_env: UseEnv
) -> None:
    use_env(missing_sqlite)
    at = run_page(page)
    assert_clean(at)
    assert "make demo" in texts(at)
    # the dashboard only reads: it must not have created the database file
    assert not Path(missing_sqlite.db_url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize("page", list(PAGES))
def test_pages_on_an_empty_database_say_what_to_run(
    page: str, empty_sqlite: DashEnv, use_env: UseEnv
) -> None:
    use_env(empty_sqlite)
    at = run_page(page)
    assert_clean(at)
    assert "make demo" in texts(at)
    assert not at.dataframe and not at.image


def test_an_unreachable_database_is_one_warning(tmp_path: Path, use_env: UseEnv) -> None:
    use_env(DashEnv("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path.as_uri(), None, {}))
    at = run_page("overview")
    assert not at.exception
    assert at.warning and "Cannot read the metadata database" in at.warning[0].value


# --------------------------------------------------------------------------- populated
def test_overview_shows_models_runs_metrics_datasets_and_the_gate(
    populated_sqlite: DashEnv, use_env: UseEnv
) -> None:
    use_env(populated_sqlite)
    at = run_page("overview")
    assert_clean(at)
    models, runs, datasets = frames(at)
    rb = models[models["model"] == "reasonbrain"].iloc[0]
    assert (rb["production"], rb["staging"], rb["versions"]) == ("v1", "v2", 2)
    assert set(runs["status"]) == {"succeeded", "failed"}
    failed = runs[runs["status"] == "failed"].iloc[0]
    assert "worker lost" in failed["error"] and "failed: train@reasonbrain" in failed["stages"]
    assert datasets.iloc[0]["validation"] == "passed"
    assert populated_sqlite.info is not None
    assert datasets.iloc[0]["version"] == populated_sqlite.info.dataset_version
    labels = {m.label for m in at.metric}
    assert {"reasonbrain@2 · reasoning_acc", "ip2p@1 · reasoning_acc"} <= labels
    assert "does not clear the margin" in texts(at)


def test_metrics_page_charts_groups_pairs_curves_and_ablation(
    populated_sqlite: DashEnv, use_env: UseEnv
) -> None:
    use_env(populated_sqlite)
    at = run_page("metrics")
    assert_clean(at)
    # CI bars by category/family/hold-out, outcome mix, paired differences, training curves
    assert len(charts(at)) >= 6
    assert any(m.label == "B − A" for m in at.metric)
    ablation = frames(at)[-1]
    assert list(ablation["rung"]) == ["ip2p", "baseline", "frce", "full"]
    assert "reasoning_acc" in ablation.columns
    # the paired comparison is the one computed in SQL + bootstrap
    b_minus_a = next(m for m in at.metric if m.label == "B − A")
    from dashboard.samples import compare

    info = populated_sqlite.info
    assert info is not None
    db = db_of(populated_sqlite)
    try:
        res = compare(db, info.evaluations["ip2p@1"], info.evaluations["identity"], "reasoning_acc")
    finally:
        db.dispose()
    assert res.overall is not None
    assert b_minus_a.value == f"{res.overall.diff.mean:+.3f}"


def test_edit_browser_pages_filters_compares_and_opens_details(
    populated_sqlite: DashEnv, use_env: UseEnv
) -> None:
    use_env(populated_sqlite)
    info = populated_sqlite.info
    assert info is not None
    at = run_page("edits")
    assert_clean(at)
    at.sidebar.selectbox(key="eb_eval").set_value(info.evaluations["reasonbrain@2"]).run()
    assert len(at.image) == 12 * 3  # source, output, target per row
    assert f"page 1 of 3 · samples 1–12 of {N_SAMPLES}" in texts(at)
    assert charts(at), "verdict mix chart"
    first_page = {c.value.split(" · ")[0] for c in at.caption if c.value.startswith("test-")}
    assert len(first_page) == 12

    at.pagination[0].set_value(3).run()
    assert_clean(at)
    third = {c.value.split(" · ")[0] for c in at.caption if c.value.startswith("test-")}
    assert len(third) == N_SAMPLES - 24 and not third & first_page

    ev = info.evaluations["reasonbrain@2"]
    at.sidebar.multiselect(key=f"eb_verdict_{ev}").set_value(["wrong_object"]).run()
    assert_clean(at)
    verdicts = [c.value for c in at.caption if "nearest" in c.value or "correct" in c.value]
    assert verdicts and all("wrong object" in v for v in verdicts)
    assert not any(p.value == 3 for p in at.pagination)  # a new filter starts at page 1

    # compare with the identity baseline: its output column joins the grid
    at.sidebar.multiselect(key=f"eb_verdict_{ev}").set_value([]).run()
    at.sidebar.selectbox(key="eb_cmp").set_value(info.evaluations["identity"]).run()
    assert_clean(at)
    assert len(at.image) == 12 * 4
    assert any(m.value.startswith("**output · identity") for m in at.markdown)

    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("detail-"))).click()
    at.run()
    assert_clean(at)
    body = texts(at)
    assert "The same sample in other evaluations" in body and "Per-sample metrics" in body


def test_edit_browser_metric_range_and_sort(populated_sqlite: DashEnv, use_env: UseEnv) -> None:
    use_env(populated_sqlite)
    info = populated_sqlite.info
    assert info is not None
    ev = info.evaluations["reasonbrain@2"]
    at = run_page("edits")
    at.sidebar.selectbox(key="eb_eval").set_value(ev).run()
    at.sidebar.selectbox(key=f"eb_sort_{ev}").set_value("l1").run()
    at.sidebar.toggle(key=f"eb_desc_{ev}").set_value(True).run()
    at.sidebar.selectbox(key=f"eb_metric_{ev}").set_value("l1").run()
    lo, hi = at.sidebar.slider(key=f"eb_range_{ev}_l1").value
    cut = lo + (hi - lo) / 2
    at.sidebar.slider(key=f"eb_range_{ev}_l1").set_range(lo, cut).run()
    assert_clean(at)
    values = [
        float(c.value.split("l1 ")[1].split(" ")[0])
        for c in at.caption
        if " l1 " in f" {c.value}" and c.value.startswith("reasoning_acc")
    ]
    assert values and all(lo <= v <= cut * 1.001 for v in values)
    assert values == sorted(values, reverse=True)


def test_a_malformed_row_is_one_error_line_not_a_traceback(
    writable_sqlite: DashEnv, use_env: UseEnv
) -> None:
    import sqlite3

    use_env(writable_sqlite)
    info = writable_sqlite.info
    assert info is not None
    ev = info.evaluations["reasonbrain@2"]
    with sqlite3.connect(writable_sqlite.db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(  # what a foreign writer with json.dumps(allow_nan=True) would leave
            "UPDATE evaluation_samples SET metrics = '{\"l1\": NaN}' "
            "WHERE evaluation_id = ? AND sample_id = 'test-000003'",
            (ev,),
        )
    at = run_page("edits")
    at.sidebar.selectbox(key="eb_eval").set_value(ev).run()
    at.sidebar.selectbox(key=f"eb_sort_{ev}").set_value("l1").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The metadata database failed: OperationalError: malformed JSON"
    ]


def test_a_missing_image_is_a_quiet_caption(
    writable_sqlite: DashEnv, use_env: UseEnv, tmp_path: Path
) -> None:
    import sqlite3

    use_env(writable_sqlite)
    info = writable_sqlite.info
    assert info is not None
    ev = info.evaluations["reasonbrain@2"]
    gone = (tmp_path / "moved" / "test-000000.png").as_uri()
    with sqlite3.connect(writable_sqlite.db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "UPDATE evaluation_samples SET image_uris = json_set(image_uris, '$.output', ?) "
            "WHERE evaluation_id = ? AND sample_id = 'test-000000'",
            (gone, ev),
        )
    at = run_page("edits")
    at.sidebar.selectbox(key="eb_eval").set_value(ev).run()
    assert_clean(at)
    assert len(at.image) == 12 * 3 - 1
    assert any("unavailable: object not found" in c.value for c in at.caption)


def test_registry_promotion_needs_confirmation(writable_sqlite: DashEnv, use_env: UseEnv) -> None:
    use_env(writable_sqlite)
    at = run_page("registry")
    assert_clean(at)
    at.selectbox(key="rg_ref").set_value("reasonbrain@2").run()
    at.selectbox(key="rg_alias").set_value("production").run()
    at.button(key="rg_promote").click().run()
    assert any("now reasonbrain@1" in w.value for w in at.warning)

    db = db_of(writable_sqlite)
    reg = registry_of(writable_sqlite, db)
    try:
        assert reg.get("reasonbrain@production").version == 1  # nothing moved yet
        at.button(key="rg_cancel").click().run()
        assert reg.get("reasonbrain@production").version == 1
        assert not any(b.key == "rg_confirm" for b in at.button)

        at.button(key="rg_promote").click().run()
        at.button(key="rg_confirm").click().run()
        assert_clean(at)
        assert reg.get("reasonbrain@production").version == 2
        assert any("reasonbrain@production → reasonbrain@2" in s.value for s in at.success)

        # demote the staging alias of v2, again behind a confirmation
        at.button(key="rg_demote_staging").click().run()
        assert any("Remove **reasonbrain@staging**" in w.value for w in at.warning)
        at.button(key="rg_confirm").click().run()
        assert_clean(at)
        with pytest.raises(Exception, match="has no reasonbrain@staging"):
            reg.get("reasonbrain@staging")
        assert reg.get("reasonbrain@2").version == 2  # the version stays
    finally:
        db.dispose()


def test_registry_refuses_to_promote_an_archived_version(
    writable_sqlite: DashEnv, use_env: UseEnv
) -> None:
    use_env(writable_sqlite)
    db = db_of(writable_sqlite)
    try:
        registry_of(writable_sqlite, db).archive("reasonbrain@2", force=True)
    finally:
        db.dispose()
    at = run_page("registry")
    at.toggle(key="rg_archived").set_value(True).run()
    at.selectbox(key="rg_ref").set_value("reasonbrain@2").run()
    assert_clean(at)
    assert at.button(key="rg_promote").disabled


def _review_once(at: AppTest, verdict: str, note: str) -> AppTest:
    at.text_area(key=next(t.key for t in at.text_area if t.key.startswith("rv_note_"))).input(note)
    return at.button(key=f"rv_{verdict}").click().run()


def test_review_round_trip(writable_sqlite: DashEnv, use_env: UseEnv) -> None:
    from dashboard import reviews

    use_env(writable_sqlite)
    info = writable_sqlite.info
    assert info is not None
    ev = info.evaluations["reasonbrain@2"]
    at = run_page("review")
    at.sidebar.selectbox(key="rv_eval").set_value(ev).run()
    assert not at.text_area, "no review form before the reviewer is named"
    assert any("Type your name" in i.value for i in at.info)

    at.sidebar.text_input(key="rv_reviewer").input("  Cleo  ").run()
    first = next(m.value for m in at.markdown if m.value.startswith("**test-"))
    at = _review_once(at, "reject", "wrong candle")
    assert_clean(at)
    assert any("saved: reject on test-000000" in s.value for s in at.success)
    second = next(m.value for m in at.markdown if m.value.startswith("**test-"))
    assert second != first  # the queue moved on

    db = db_of(writable_sqlite)
    try:
        prog = reviews.progress(db, ev)
        assert prog.by_reviewer["Cleo"] == 1 and prog.n_reviewed == 8  # ana/ben reviewed 8
        lines = [json.loads(x) for x in reviews.export_lines(db, ev)]
    finally:
        db.dispose()
    mine = [x for x in lines if x["review"]["reviewer"] == "Cleo"]
    assert len(mine) == 1
    assert mine[0]["sample_id"] == "test-000000" and mine[0]["label"] is False
    assert mine[0]["review"]["note"] == "wrong candle"
    assert mine[0]["images"]["output"].startswith("file://")
    # read back on the page: the reviews table and the agreement tables
    table = frames(at)
    assert any((t["reviewer"] == "Cleo").any() for t in table if "reviewer" in t.columns)
    assert any("ana · ben" in set(t.get("reviewers", [])) for t in table)
    assert any(b.key == "rv_export" for b in at.get("download_button"))


def test_review_from_the_edit_browser_link(writable_sqlite: DashEnv, use_env: UseEnv) -> None:
    use_env(writable_sqlite)
    info = writable_sqlite.info
    assert info is not None
    ev = info.evaluations["ip2p@1"]
    at = run_page("review")  # already on the page with another evaluation selected
    at.query_params.update({"eval": str(ev), "sample": "test-000017"})
    at.session_state["rv_reviewer"] = "dan"
    at.run()
    assert_clean(at)
    assert any(m.value.startswith("**test-000017**") for m in at.markdown)
    at = _review_once(at, "flag", "target looks odd")
    assert_clean(at)
    assert any("saved: flag on test-000017" in s.value for s in at.success)


# ---------------------------------------------------------------------------- access
def test_exposed_without_password_is_read_only(writable_sqlite: DashEnv, use_env: UseEnv) -> None:
    from streamlit import config

    use_env(writable_sqlite)
    config.set_option("server.address", "0.0.0.0")
    at = run_page("review")
    at.session_state["rv_reviewer"] = "eve"
    at.run()
    assert_clean(at)
    assert not at.text_area
    assert any("REASONBRAIN_DASHBOARD_PASSWORD" in i.value for i in at.info)
    at = run_page("registry", at)
    assert not any(b.key == "rg_promote" for b in at.button)


def test_exposed_with_password_unlocks_writes(
    writable_sqlite: DashEnv, use_env: UseEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit import config

    use_env(writable_sqlite)
    monkeypatch.setenv("REASONBRAIN_DASHBOARD_PASSWORD", "s3cret")
    config.set_option("server.address", "0.0.0.0")
    at = run_page("review")
    at.session_state["rv_reviewer"] = "eve"
    at.run()
    assert not at.text_area
    unlock = next(b.key for b in at.button if "unlock" in str(b.key).lower())
    at.text_input(key="pw-review").input("wrong")
    at.button(key=unlock).click().run()
    assert any("Wrong password" in e.value for e in at.error)
    assert not any(t.key and t.key.startswith("rv_note_") for t in at.text_area)
    at.text_input(key="pw-review").input("s3cret")
    at.button(key=unlock).click().run()
    assert any(t.key and t.key.startswith("rv_note_") for t in at.text_area)
    # the unlock holds for the session: the registry's actions are there too
    at = run_page("registry", at)
    assert any(b.key == "rg_promote" for b in at.button)


def test_password_from_streamlit_secrets(writable_sqlite: DashEnv, use_env: UseEnv) -> None:
    from streamlit import config

    use_env(writable_sqlite)
    config.set_option("server.address", "0.0.0.0")
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.secrets["dashboard_password"] = "from-secrets"
    at = run_page("registry", at)
    assert any(t.key == "pw-registry" for t in at.text_input)


# ------------------------------------------------------------------ PostgreSQL + S3
@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.slow
def test_every_page_on_postgresql_and_s3(populated_pg_s3: DashEnv, use_env: UseEnv) -> None:
    from dashboard import reviews

    use_env(populated_pg_s3)
    info = populated_pg_s3.info
    assert info is not None
    at = AppTest.from_file(str(APP), default_timeout=120)
    for page in PAGES:
        at = run_page(page, at)
        assert_clean(at)
    at = run_page("edits", at)
    images = at.image
    assert len(images) == 36
    assert not any("unavailable" in c.value for c in at.caption)
    at = run_page("registry", at)
    files = next(f for f in frames(at) if "download" in f.columns)
    assert all(str(u).startswith("http") and "Signature" in str(u) for u in files["download"])
    # a review lands in PostgreSQL
    ev = info.evaluations["reasonbrain@2"]
    at = run_page("review", at)
    at.session_state["rv_reviewer"] = "pg-reviewer"
    at.session_state["rv_eval"] = ev
    at.run()
    at = _review_once(at, "accept", "fine")
    assert_clean(at)
    db = db_of(populated_pg_s3)
    try:
        got = [json.loads(x) for x in reviews.export_lines(db, ev)]
    finally:
        db.dispose()
    assert any(x["review"]["reviewer"] == "pg-reviewer" and x["label"] is True for x in got)
    assert all(x["images"]["src"].startswith("s3://") for x in got)
