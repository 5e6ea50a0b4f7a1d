"""Benchmark: what the ``pipeline`` flow adds after the DVC stages — recording an evaluation.

Generates a ReasonSynth test split (``--n`` samples, 32 px), evaluates the identity baseline on
it (plain loop, no Ray), then times ``record_evaluation`` (SQL rows for every sample; edited,
source and target images into the object store) with

- the embedded defaults: a ``file://`` store and SQLite (what ``make demo`` uses);
- an S3 endpoint (a moto server process on loopback) and PostgreSQL on 127.0.0.1:5432 (skipped
  with a note when no PostgreSQL server answers),

and recording it a second time (found by its key: nothing uploaded). Prints ONE JSON object.

    python benchmarks/record_evaluation.py            # 600 samples, as the demo's test split
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def _record(root: Path, data: Path, out: Path) -> tuple[float, float, int]:
    """Seconds to record, seconds to record again, objects in the evaluation's prefix."""
    from reasonbrain.config import Params
    from reasonbrain.pipeline import evaluations, records
    from reasonbrain.registry.api import open_registry

    params = Params()
    with open_registry() as reg:
        ds = records.record_dataset(
            reg.db,
            name="bench",
            version="v1",
            path=str(data),
            split_counts={},
            validation_report=None,
        )
        kw: dict[str, Any] = {
            "label": "identity",
            "subject": "identity",
            "model_version_id": None,
            "dataset_id": ds,
            "dataset_name": "bench",
            "dataset_version": "v1",
            "data_root": data,
            "run_id": None,
            "eval_params": params.eval.model_dump(mode="json"),
        }
        t = time.perf_counter()
        rec = evaluations.record_evaluation(reg, out, **kw)
        first = time.perf_counter() - t
        t = time.perf_counter()
        again = evaluations.record_evaluation(reg, out, **kw)
        second = time.perf_counter() - t
        assert rec.created and not again.created
        n = sum(1 for _ in reg.store.list_objects(""))
    return first, second, n


def main() -> None:
    from _moto import start_moto  # benchmarks/ is on sys.path (run as a script)

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=600, help="test samples")
    args = ap.parse_args()

    from reasonbrain.config import EvalParams, SynthParams
    from reasonbrain.data.synth import generate_dataset
    from reasonbrain.evaluation.runner import evaluate

    result: dict[str, Any] = {"samples": args.n}
    with tempfile.TemporaryDirectory(prefix="rb-bench-record-") as tmp:
        root = Path(tmp)
        data = root / "data"
        generate_dataset(
            data, SynthParams(n_train=8, n_val=0, n_test=args.n, workers=1), progress=False
        )
        out = root / "eval"
        evaluate("identity", data, out, EvalParams(), engine="loop", progress=False)

        os.environ["REASONBRAIN_HOME"] = str(root / "home")
        os.environ["REASONBRAIN_STORE_URI"] = (root / "store").as_uri()
        os.environ["REASONBRAIN_DB_URL"] = f"sqlite:///{root / 'r.db'}"
        first, again, objects = _record(root, data, out)
        result["file_sqlite"] = {"record_s": round(first, 2), "again_s": round(again, 3)}
        result["objects"] = objects

        moto, url = start_moto()
        try:
            import boto3
            import psycopg

            os.environ.update(
                {
                    "AWS_ENDPOINT_URL": url,
                    "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench",
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
            )
            boto3.client("s3").create_bucket(Bucket="bench")
            name = f"rb_bench_{uuid.uuid4().hex[:8]}"
            admin = "host=127.0.0.1 user=postgres dbname=postgres connect_timeout=3"
            try:
                with psycopg.connect(admin, autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{name}"')
            except psycopg.Error as err:
                result["s3_postgres"] = f"skipped: PostgreSQL not reachable ({err})"
            else:
                try:
                    os.environ["REASONBRAIN_STORE_URI"] = "s3://bench/registry"
                    os.environ["REASONBRAIN_DB_URL"] = (
                        f"postgresql+psycopg://postgres@127.0.0.1/{name}"
                    )
                    first, again, _ = _record(root, data, out)
                    result["s3_postgres"] = {
                        "record_s": round(first, 2),
                        "again_s": round(again, 3),
                    }
                finally:
                    with psycopg.connect(admin, autocommit=True) as c:
                        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            moto.terminate()
            moto.wait()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
