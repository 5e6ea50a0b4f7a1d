"""The dashboard's SQL layer on SQLite and PostgreSQL: filters, counts, paging, sorting, metric
ranges through JSON extraction, paired comparisons, reviews (progress, agreement, queue, export)
and the problems a database can have before anything was recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dashboard import queries, reviews, samples
from dashboard.connect import SourceProblem, open_database
from dashboard.records import NO_VERDICT, SORT_BY_ID, SampleFilter
from reasonbrain.registry.db import Database, open_db
from reasonbrain.registry.tables import (
    Evaluation,
    EvaluationSample,
    Metric,
    Review,
    Run,
    utcnow,
)

VERDICT_CYCLE = ["target", "no_change", "wrong_object", "wrong_change", None]


def _sample(i: int) -> dict[str, Any]:
    verdict = VERDICT_CYCLE[i % 5]
    return {
        "sample_id": f"s{i:03d}",
        "category": ["physical", "causal"][i % 2],
        "family": ["ice_melt", "domino_chain", None][i % 3],
        "holdout": ["seen", "phrasing"][i % 2],
        "instruction": f"what if thing {i} melts" + (" at 100% _heat_" if i == 7 else ""),
        "verdict": verdict,
        "correct": None if verdict is None else verdict == "target",
        "metrics": {
            "l1": i / 100,
            "reasoning_acc": None if verdict is None else float(verdict == "target"),
            **({"psnr": 20.0 + i} if i % 4 else {}),
        },
        "image_uris": {"src": f"file:///x/{i}.png"},
    }


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """Two evaluations (A: 25 samples, B: 20 shared ids with other outcomes)."""
    d = open_db(db_url)
    with d.sessions.begin() as s:
        est = {"mean": 0.4, "ci_low": 0.3, "ci_high": 0.5, "n": 20}
        a = Evaluation(
            label="A",
            split="test",
            summary={"overall": {"metrics": {"instruction_alignment": est, "l1": est}}},
            n_samples=25,
        )
        b = Evaluation(label="B", split="test", summary={}, n_samples=20)
        s.add_all([a, b])
        s.flush()
        for i in range(25):
            s.add(EvaluationSample(evaluation_id=a.id, **_sample(i)))
        for i in range(20):
            row = _sample(i)
            row["metrics"] = {**row["metrics"], "reasoning_acc": float(i % 2 == 0), "l1": 0.5}
            row["correct"] = i % 2 == 0
            s.add(EvaluationSample(evaluation_id=b.id, **row))
    yield d
    d.dispose()


def ids(rows: list[Any]) -> list[str]:
    return [r.sample_id for r in rows]


def eval_id(db: Database, label: str) -> int:
    with db.sessions() as s:
        return int(s.scalar(select(Evaluation.id).where(Evaluation.label == label)) or 0)


def test_evaluation_headlines_come_by_json_path(db: Database) -> None:
    infos = {e.label: e for e in queries.evaluations(db)}
    a, b = infos["A"], infos["B"]
    assert a.primary == "instruction_alignment" and a.headline is not None
    assert (a.headline.mean, a.headline.ci_low, a.headline.n) == (0.4, 0.3, 20)
    assert a.headline.text() == "0.400 [0.300, 0.500]"
    assert b.primary is None and b.headline is None
    assert [e.label for e in queries.evaluations(db, limit=1)] == ["B"]  # newest first


def test_facets_and_metric_range(db: Database) -> None:
    a = eval_id(db, "A")
    f = samples.facets(db, a)
    assert f.categories == ("causal", "physical")
    assert f.families == ("domino_chain", "ice_melt")
    assert set(f.verdicts) == {"no_change", "target", "wrong_change", "wrong_object", NO_VERDICT}
    assert f.metrics == ("instruction_alignment", "l1")  # from the summary, headline order
    b = samples.facets(db, eval_id(db, "B"))
    assert b.metrics == ("reasoning_acc", "l1", "psnr")  # no summary: from the samples
    assert samples.metric_range(db, a, "l1") == (0.0, 0.24)
    assert samples.metric_range(db, a, "nope") is None


def test_filters_count_and_page_consistently(db: Database) -> None:
    a = eval_id(db, "A")
    cases = [
        SampleFilter(),
        SampleFilter(categories=("causal",)),
        SampleFilter(verdicts=("wrong_object", NO_VERDICT)),
        SampleFilter(outcome="correct"),
        SampleFilter(outcome="incorrect", families=("ice_melt",)),
        SampleFilter(outcome="excluded"),
        SampleFilter(metric="psnr", metric_min=25.0, metric_max=35.0),
        SampleFilter(metric="l1", metric_max=0.05),
    ]
    every = samples.page_samples(db, a, SampleFilter(), page=1, page_size=100)
    for f in cases:
        expected = [r for r in every if _matches(r, f)]
        assert samples.count_samples(db, a, f) == len(expected), f
        got = samples.page_samples(db, a, f, page=1, page_size=100)
        assert ids(got) == ids(expected), f


def _matches(r: Any, f: SampleFilter) -> bool:
    if f.categories and r.category not in f.categories:
        return False
    if f.families and r.family not in f.families:
        return False
    if f.verdicts and (r.verdict or NO_VERDICT) not in f.verdicts:
        return False
    if f.outcome == "correct" and r.correct is not True:
        return False
    if f.outcome == "incorrect" and r.correct is not False:
        return False
    if f.outcome == "excluded" and r.correct is not None:
        return False
    if f.metric:
        v = r.metrics.get(f.metric)
        if v is None:
            return False
        if f.metric_min is not None and v < f.metric_min:
            return False
        if f.metric_max is not None and v > f.metric_max:
            return False
    return True


def test_pages_cover_every_sample_once(db: Database) -> None:
    a = eval_id(db, "A")
    seen: list[str] = []
    for page in range(1, 5):
        seen += ids(samples.page_samples(db, a, SampleFilter(), page=page, page_size=7))
    assert seen == [f"s{i:03d}" for i in range(25)]
    assert samples.page_samples(db, a, SampleFilter(), page=5, page_size=7) == []
    with pytest.raises(ValueError):
        samples.page_samples(db, a, SampleFilter(), page=0, page_size=7)


def test_sort_by_metric_puts_missing_values_last(db: Database) -> None:
    a = eval_id(db, "A")
    rows = samples.page_samples(
        db, a, SampleFilter(sort="psnr", descending=True), page=1, page_size=100
    )
    values = [r.metrics.get("psnr") for r in rows]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True)
    assert values[len(present) :] == [None] * (25 - len(present))
    asc = samples.page_samples(db, a, SampleFilter(sort="psnr"), page=1, page_size=100)
    assert [r.metrics.get("psnr") for r in asc][-1] is None
    by_id = samples.page_samples(
        db, a, SampleFilter(sort=SORT_BY_ID, descending=True), page=1, page_size=3
    )
    assert ids(by_id) == ["s024", "s023", "s022"]


def test_search_treats_wildcards_literally(db: Database) -> None:
    a = eval_id(db, "A")
    assert ids(samples.page_samples(db, a, SampleFilter(search="100%"), page=1, page_size=9)) == [
        "s007"
    ]
    assert samples.count_samples(db, a, SampleFilter(search="_heat_")) == 1
    assert samples.count_samples(db, a, SampleFilter(search="%")) == 1
    assert samples.count_samples(db, a, SampleFilter(search="S01")) == 10  # ids, any case


def test_verdict_counts(db: Database) -> None:
    a = eval_id(db, "A")
    assert samples.verdict_counts(db, a, SampleFilter()) == {
        "target": 5,
        "no_change": 5,
        "wrong_object": 5,
        "wrong_change": 5,
        NO_VERDICT: 5,
    }


def test_same_sample_across_evaluations(db: Database) -> None:
    a, b = eval_id(db, "A"), eval_id(db, "B")
    other = samples.samples_by_id(db, b, ["s001", "s021", "s019"])
    assert sorted(other) == ["s001", "s019"]  # s021 is not in B
    across = samples.sample_across(db, "s003")
    assert {e.label for e, _ in across} == {"A", "B"}
    assert samples.samples_by_id(db, a, []) == {}


def test_paired_comparison_uses_shared_scored_samples(db: Database) -> None:
    a, b = eval_id(db, "A"), eval_id(db, "B")
    res = samples.compare(db, a, b, "reasoning_acc", resamples=200)
    # shared ids 0..19; A has no reasoning_acc on ids ≡ 4 (mod 5) → 16 pairs
    assert res.n_shared == 16
    assert res.overall is not None
    pairs = samples.paired_values(db, a, b, "reasoning_acc")
    diff = sum(y - x for _, _, x, y in pairs) / len(pairs)
    assert res.overall.diff.mean == pytest.approx(diff)
    assert (res.both, res.only_a, res.only_b, res.neither) == (
        sum(1 for *_, x, y in pairs if x and y),
        sum(1 for *_, x, y in pairs if x and not y),
        sum(1 for *_, x, y in pairs if y and not x),
        sum(1 for *_, x, y in pairs if not x and not y),
    )
    assert set(res.by_category) == {"physical", "causal"}
    l1 = samples.compare(db, a, b, "l1", resamples=200)
    assert l1.both is None and l1.overall is not None and l1.overall.lower_is_better
    assert samples.compare(db, a, b, "nope").overall is None


def _review(db: Database, row_id: int, who: str, verdict: str, minutes: int) -> None:
    with db.sessions.begin() as s:
        s.add(
            Review(
                sample_row_id=row_id,
                verdict=verdict,
                reviewer=who,
                created_at=utcnow() + timedelta(minutes=minutes),
            )
        )


def _row(db: Database, ev: int, sid: str) -> int:
    with db.sessions() as s:
        return int(
            s.scalar(
                select(EvaluationSample.id).where(
                    EvaluationSample.evaluation_id == ev, EvaluationSample.sample_id == sid
                )
            )
            or 0
        )


def test_review_progress_agreement_and_newest_verdict_wins(db: Database) -> None:
    a = eval_id(db, "A")
    # s000 target (correct), s001 no_change (wrong), s002 wrong_object, s004 no verdict
    r0, r1, r2, r4 = (_row(db, a, f"s00{i}") for i in (0, 1, 2, 4))
    _review(db, r0, "ana", "reject", 0)
    _review(db, r0, "ana", "accept", 1)  # changed her mind: accept counts
    _review(db, r1, "ana", "reject", 2)
    _review(db, r2, "ana", "accept", 3)
    _review(db, r4, "ana", "flag", 4)
    _review(db, r0, "ben", "accept", 5)
    _review(db, r1, "ben", "accept", 6)
    prog = reviews.progress(db, a)
    assert (prog.n_samples, prog.n_reviewed) == (25, 4)
    assert prog.by_reviewer == {"ana": 4, "ben": 2}
    assert prog.by_verdict == {"accept": 4, "reject": 1, "flag": 1}
    pairs, autos = reviews.agreement(db, a)
    assert [(p.a, p.b, p.n, p.agreement) for p in pairs] == [("ana", "ben", 2, 0.5)]
    by = {x.reviewer: x for x in autos}
    # ana vs verifier on s000 (accept/correct ✓), s001 (reject/wrong ✓), s002 (accept/wrong ✗)
    assert (by["ana"].n, by["ana"].agreement) == (3, pytest.approx(2 / 3))
    assert (by["ben"].n, by["ben"].agreement) == (2, 0.5)


def test_cohen_kappa_known_values() -> None:
    assert reviews.cohen_kappa([]) is None
    assert reviews.cohen_kappa([("a", "a"), ("b", "b")]) == 1.0
    assert reviews.cohen_kappa([("a", "a"), ("a", "a")]) is None  # chance agreement is 1
    # 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = 0.5 → kappa 0.4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert reviews.cohen_kappa(pairs) == pytest.approx(0.4)


def test_add_review_validates_and_queue_skips_what_you_reviewed(db: Database) -> None:
    a = eval_id(db, "A")
    r0 = _row(db, a, "s000")
    with pytest.raises(reviews.ReviewInputError, match="reviewer's name"):
        reviews.add_review(db, r0, "accept", "   ")
    with pytest.raises(reviews.ReviewInputError, match="unknown review verdict"):
        reviews.add_review(db, r0, "maybe", "ana")
    with pytest.raises(reviews.ReviewInputError, match="no such evaluation sample"):
        reviews.add_review(db, 999_999, "accept", "ana")
    with pytest.raises(reviews.ReviewInputError, match="note longer"):
        reviews.add_review(db, r0, "accept", "ana", "x" * (reviews.MAX_NOTE + 1))
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 0  # nothing half-written
    saved = reviews.add_review(db, r0, "accept", "  ana   b ", "  fine ")
    assert (saved.reviewer, saved.note, saved.sample_id) == ("ana b", "fine", "s000")
    nxt = reviews.next_unreviewed(db, a, "ana b")
    assert nxt is not None and nxt.sample_id == "s001"
    assert reviews.next_unreviewed(db, a, "someone else") is not None
    assert reviews.next_unreviewed(db, a, "someone else").sample_id == "s000"  # type: ignore[union-attr]
    # after the last one it wraps around to the first unreviewed
    wrapped = reviews.next_unreviewed(db, a, "ana b", after="s024")
    assert wrapped is not None and wrapped.sample_id == "s001"
    failures = reviews.next_unreviewed(db, a, "ana b", SampleFilter(outcome="correct"))
    assert failures is not None and failures.sample_id == "s005"  # s000 done, next target


def test_concurrent_reviewers_all_land(db: Database) -> None:
    import threading

    a = eval_id(db, "A")
    rows = [_row(db, a, f"s{i:03d}") for i in range(10)]
    errors: list[BaseException] = []

    def work(who: str) -> None:
        try:
            for r in rows:
                reviews.add_review(db, r, "accept", who)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(f"r{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    prog = reviews.progress(db, a)
    assert prog.by_reviewer == {"r0": 10, "r1": 10, "r2": 10} and prog.n_reviewed == 10


def test_export_is_jsonl_with_sample_and_label(db: Database) -> None:
    a, b = eval_id(db, "A"), eval_id(db, "B")
    reviews.add_review(db, _row(db, a, "s000"), "accept", "ana", "ok")
    reviews.add_review(db, _row(db, a, "s001"), "reject", "ana")
    reviews.add_review(db, _row(db, b, "s002"), "flag", "ben", "unsure")
    lines = reviews.export_jsonl(db, a).splitlines()
    docs = [json.loads(x) for x in lines]
    assert [(d["sample_id"], d["label"]) for d in docs] == [("s000", True), ("s001", False)]
    assert docs[0]["instruction"] == "what if thing 0 melts"
    assert docs[0]["auto_verdict"] == "target" and docs[0]["auto_correct"] is True
    assert docs[0]["review"]["note"] == "ok" and docs[0]["images"]["src"] == "file:///x/0.png"
    everything = [json.loads(x) for x in reviews.export_lines(db, None)]
    assert len(everything) == 3 and everything[-1]["label"] is None


def test_runs_curves_and_ablation(db: Database) -> None:
    with db.sessions.begin() as s:
        t = utcnow()
        s.add(Run(id="flow-1", kind="pipeline", status="failed", started_at=t, error="boom"))
        s.add(Run(id="flow-0", kind="ingest", status="succeeded", started_at=t - timedelta(1)))
        run = Run(id="tr-1", kind="train", status="succeeded", parent_id="flow-1", started_at=t)
        run.metrics += [Metric(name="loss", value=1.0 / (k + 1), step=k) for k in range(3)]
        run.metrics.append(Metric(name="final", value=3.0))  # no step: not a curve point
        s.add(run)
        s.add(
            Run(
                id="ab-1",
                kind="ablation",
                status="succeeded",
                started_at=t,
                details={
                    "rungs": {
                        "full": {
                            "description": "all",
                            "metrics": {"steps": 10, "loss_end": 0.1},
                            "eval": {"reasoning_acc": {"mean": 0.7}},
                        }
                    }
                },
            )
        )
    assert [r.id for r in queries.flow_runs(db)] == ["flow-1", "flow-0"]
    assert [p.step for p in queries.curves(db, ["tr-1"])] == [0, 1, 2]
    ab = queries.latest_ablation(db)
    assert ab is not None and ab.details is not None
    table = queries.ablation_table(ab.details)
    assert table == [
        {
            "rung": "full",
            "what": "all",
            "steps": 10,
            "loss start": None,
            "loss end": 0.1,
            "val loss": None,
            "seconds": None,
            "reasoning_acc": 0.7,
        }
    ]


def test_counts_on_an_empty_database(db_url: str) -> None:
    d = open_db(db_url)
    try:
        assert queries.counts(d).empty
        assert queries.model_summaries(d) == [] and queries.latest_promotion(d) is None
        assert queries.datasets_in_use(d) == []
    finally:
        d.dispose()


# ------------------------------------------------------------------- connection problems
def test_open_database_never_creates_a_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "rb.db"
    with pytest.raises(SourceProblem) as err:
        open_database(f"sqlite:///{path}")
    assert err.value.kind == "missing" and "make demo" in err.value.fix
    assert not path.exists() and not path.parent.exists()


def test_open_database_reports_no_schema_and_an_old_schema(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from reasonbrain.registry.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'rb.db'}"
    create_engine(url).connect().close()  # an empty file
    with pytest.raises(SourceProblem) as err:
        open_database(url)
    assert err.value.kind == "empty"
    engine = make_engine(url)
    upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(SourceProblem) as err:
        open_database(url)
    assert err.value.kind == "outdated" and "db upgrade" in err.value.fix


def test_open_database_reports_an_unreachable_server_without_the_password() -> None:
    with pytest.raises(SourceProblem) as err:
        open_database("postgresql+psycopg://u:hunter2@127.0.0.1:1/db")
    assert err.value.kind == "unreachable"
    assert "hunter2" not in str(err.value) + err.value.fix
