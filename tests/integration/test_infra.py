"""`reasonbrain infra up|status|down`: the local stack's S3 endpoint and PostgreSQL database.

The Prefect server part is not run here: `prefect server start` takes ~30 s to answer its
health check on this 2-core machine, a third of the registry's whole test budget. Set
REASONBRAIN_TEST_PREFECT_SERVER=1 to include it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from reasonbrain.registry import infra

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def _s3(st: infra.StackStatus) -> infra.Component:
    return next(c for c in st.components if c.name == "s3")


def test_up_status_down_is_idempotent(tmp_path: Path, pg_admin: str) -> None:
    import boto3
    import psycopg

    home = tmp_path / "home"
    port = infra.free_port()
    db_name = f"rb_infra_{uuid.uuid4().hex[:10]}"
    try:
        first = infra.up(home=home, s3_port=port, db_name=db_name, prefect=False, wait_s=30)
        s3 = _s3(first)
        assert s3.running and s3.url == f"http://127.0.0.1:{port}" and s3.pid
        assert first.env["AWS_ENDPOINT_URL"] == s3.url
        assert first.env["REASONBRAIN_STORE_URI"] == "s3://reasonbrain/registry"
        assert first.env["REASONBRAIN_DB_URL"].endswith(f"/{db_name}")
        env_sh = (home / "infra" / "env.sh").read_text()
        assert f"export AWS_ENDPOINT_URL={s3.url}" in env_sh
        client = boto3.client(
            "s3",
            endpoint_url=s3.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.head_bucket(Bucket="reasonbrain")  # the bucket exists
        with psycopg.connect(host="127.0.0.1", user=pg_admin, dbname=db_name):
            pass  # the database exists

        again = infra.up(home=home, s3_port=port, db_name=db_name, prefect=False, wait_s=30)
        assert _s3(again).pid == s3.pid  # reused, not restarted
        st = infra.status(home=home, db_name=db_name)
        assert _s3(st).running and _s3(st).pid == s3.pid
        assert {c.name: c.running for c in st.components}["prefect"] is False

        with pytest.raises(infra.InfraError, match="already in use"):
            infra.up(home=tmp_path / "other", s3_port=port, postgres=False, prefect=False)

        infra.down(home=home)
        assert not _s3(infra.status(home=home, db_name=db_name)).running
        assert (
            not Path(f"/proc/{s3.pid}").exists()
            or b"moto" not in Path(f"/proc/{s3.pid}/cmdline").read_bytes()
        )
        assert not (home / "infra" / "env.sh").exists()
    finally:
        infra.down(home=home)
        with psycopg.connect(
            host="127.0.0.1", user=pg_admin, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@pytest.mark.skipif(
    os.environ.get("REASONBRAIN_TEST_PREFECT_SERVER") != "1",
    reason="prefect server start takes ~30 s here; set REASONBRAIN_TEST_PREFECT_SERVER=1",
)
def test_prefect_server_starts_and_stops(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = infra.free_port()
    try:
        st = infra.up(
            home=home,
            s3_port=infra.free_port(),
            postgres=False,
            prefect=True,
            prefect_port=port,
            wait_s=120,
        )
        pf = next(c for c in st.components if c.name == "prefect")
        assert pf.running and st.env["PREFECT_API_URL"] == f"http://127.0.0.1:{port}/api"
    finally:
        infra.down(home=home)
    assert not next(c for c in infra.status(home=home).components if c.name == "prefect").running
