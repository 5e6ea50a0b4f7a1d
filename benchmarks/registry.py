"""Benchmark: registry overhead over plain boto3, and listing speed (issue 6).

Against a local S3 endpoint (a moto server process on loopback, or ``--endpoint``):

- upload/download throughput of a ~200 MB model directory (a few files of random bytes) through
  the registry (``register``: hash, upload, verify, DB row, manifest; ``pull``: download, verify
  every sha256, atomic rename) vs plain boto3 ``upload_file``/``download_file`` of the same files
  in the same run. Target: registry >= 0.9x plain.
- time to list 1,000 versions (``Registry.list_versions`` on a SQLite database holding 1,000
  version rows, inserted directly: the listing reads only the database).

Each transfer is repeated ``--repeats`` times, alternating plain/registry; the best run counts.
Prints ONE JSON object.

    python benchmarks/registry.py
    python benchmarks/registry.py --mb 50 --repeats 2     # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path


def _make_model(root: Path, total_mb: int) -> list[Path]:
    """A model directory: weights shards + small config/tokenizer/card, ~total_mb MB."""
    root.mkdir(parents=True)
    shares = (0.5, 0.3, 0.2)
    files = []
    for i, share in enumerate(shares):
        p = root / f"model-{i + 1:05d}-of-{len(shares):05d}.safetensors"
        p.write_bytes(os.urandom(int(total_mb * 1_000_000 * share)))
        files.append(p)
    (root / "config.json").write_text('{"preset": "tiny"}')
    (root / "tokenizer.json").write_text('{"vocab": {}}')
    (root / "README.md").write_text("# bench model\n")
    files += [root / "config.json", root / "tokenizer.json", root / "README.md"]
    return files


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark and print/return its JSON result."""
    from _moto import start_moto  # benchmarks/ is on sys.path (run as a script)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="model directory size in MB")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--versions", type=int, default=1000, help="versions to list")
    ap.add_argument("--endpoint", default=None, help="S3 endpoint (default: start moto)")
    args = ap.parse_args(argv)

    import boto3

    from reasonbrain.registry.api import Registry
    from reasonbrain.registry.db import open_db
    from reasonbrain.registry.s3 import S3Store
    from reasonbrain.registry.tables import ModelVersion

    for k, v in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(k, v)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    proc = None
    endpoint = args.endpoint
    if endpoint is None:
        proc, endpoint = start_moto()
    work = Path(tempfile.mkdtemp(prefix="rb-bench-registry-"))
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=bucket)
        files = _make_model(work / "model", args.mb)
        nbytes = sum(p.stat().st_size for p in files)
        store = S3Store(bucket, "registry", endpoint_url=endpoint)
        reg = Registry(open_db(f"sqlite:///{work / 'bench.db'}"), store, work / "cache")

        plain_up, plain_down, reg_up, reg_down = [], [], [], []
        for r in range(args.repeats):
            t = time.perf_counter()
            for p in files:
                client.upload_file(str(p), bucket, f"plain/{r}/{p.name}")
            plain_up.append(time.perf_counter() - t)
            t = time.perf_counter()
            mv = reg.register(work / "model", "bench")
            reg_up.append(time.perf_counter() - t)

            out = work / f"plain-{r}"
            out.mkdir()
            t = time.perf_counter()
            for p in files:
                client.download_file(bucket, f"plain/{r}/{p.name}", str(out / p.name))
            plain_down.append(time.perf_counter() - t)
            t = time.perf_counter()
            reg.pull(mv.ref, work / f"pulled-{r}")
            reg_down.append(time.perf_counter() - t)
            shutil.rmtree(out)
            shutil.rmtree(work / f"pulled-{r}")

        # listing: N version rows in a fresh database
        db = open_db(f"sqlite:///{work / 'list.db'}")
        files_json = [{"path": f"f{i}", "size": 1, "sha256": "0" * 64} for i in range(6)]
        with db.sessions.begin() as s:
            s.add_all(
                ModelVersion(
                    name=f"model-{i % 10}",
                    version=i // 10 + 1,
                    store_uri=f"s3://b/models/{i}",
                    sha256="0" * 64,
                    size_bytes=1,
                    files=files_json,
                )
                for i in range(args.versions)
            )
        lister = Registry(db, store, work / "cache")
        lister.list_versions()  # warm-up (statement cache, connection)
        t = time.perf_counter()
        listed = lister.list_versions()
        list_s = time.perf_counter() - t
        assert len(listed) == args.versions

        mb = nbytes / 1e6
        up_p, up_r = mb / min(plain_up), mb / min(reg_up)
        dn_p, dn_r = mb / min(plain_down), mb / min(reg_down)
        result: dict[str, object] = {
            "benchmark": "registry",
            "endpoint": "moto server (loopback)" if proc else endpoint,
            "model_dir_mb": round(mb, 1),
            "files": len(files),
            "repeats": args.repeats,
            "part_size_mb": store.transfer.multipart_chunksize // (1024 * 1024),
            "upload_mb_s": {"plain_boto3": round(up_p, 1), "registry": round(up_r, 1)},
            "download_mb_s": {"plain_boto3": round(dn_p, 1), "registry": round(dn_r, 1)},
            "upload_ratio": round(up_r / up_p, 3),
            "download_ratio": round(dn_r / dn_p, 3),
            "target_ratio": 0.9,
            "list_versions": args.versions,
            "list_seconds": round(list_s, 4),
            "cpu_count": os.cpu_count(),
        }
        reg.close()
        db.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
