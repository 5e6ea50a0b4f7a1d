"""``reasonbrain registry …``: register, list, show, promote, pull, archive and gc models.

Thin layer over :mod:`reasonbrain.registry.api`. The object store and the database come from
settings (``REASONBRAIN_STORE_URI``, ``REASONBRAIN_DB_URL``); the database schema is migrated to
the newest revision when the registry opens (``reasonbrain registry db upgrade`` does it
explicitly).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from reasonbrain.cli._common import console

if TYPE_CHECKING:
    from reasonbrain.registry.tables import ModelVersion

app = typer.Typer(help="Model registry: versions in the object store, metadata in SQL.")
db_app = typer.Typer(help="Metadata database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _summary(mv: ModelVersion) -> dict[str, Any]:
    return {
        "ref": mv.ref,
        "name": mv.name,
        "version": mv.version,
        "aliases": sorted(a.alias for a in mv.aliases),
        "store_uri": mv.store_uri,
        "store_key": mv.store_key,
        "sha256": mv.sha256,
        "size_bytes": mv.size_bytes,
        "created_at": mv.created_at.isoformat(),
        "run_id": mv.run_id,
        "archived": mv.archived_at is not None,
    }


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@app.command("register")
def register(
    model_dir: Path = typer.Argument(..., help="Model directory (config, safetensors, card …)."),
    name: str = typer.Option(..., "--name", help="Model name."),
    run: str | None = typer.Option(None, "--run", help="Id of the run that produced it."),
    alias: list[str] | None = typer.Option(None, "--alias", help="Also set this alias."),
    description: str | None = typer.Option(None, "--description", help="Free text."),
) -> None:
    """Upload a model directory as the next version of NAME (atomic; checksums verified).

    When MODEL_DIR is a training output's model (``run.json`` beside it, as ``reasonbrain
    train`` and the pipeline write), its lineage is recorded as the pipeline flow records it:
    git commit, params and their hash, dataset version from dvc.lock, Ray Train run, training
    metrics; the training run and its curves are recorded too.
    """
    from reasonbrain.lineage import gather_lineage, training_output
    from reasonbrain.registry.api import open_registry

    out = training_output(model_dir)
    lineage = gather_lineage(model_dir, source="cli")
    with open_registry() as reg:
        run_id = run
        if run_id is None and out is not None:
            from reasonbrain.pipeline.records import record_training_run

            run_id = record_training_run(reg.db, out, lineage, parent_id=None)
        mv = reg.register(
            model_dir,
            name,
            run_id=run_id,
            lineage=lineage,
            description=description,
            aliases=alias or [],
        )
    console.print(
        f"[green]registered[/] [bold]{mv.ref}[/] ({len(mv.files)} files, {_size(mv.size_bytes)}, "
        f"sha256 {mv.sha256[:12]}) → {mv.store_uri}"
    )
    if out is not None:
        commit = (lineage["git_commit"] or "?")[:12] + (" (dirty)" if lineage["git_dirty"] else "")
        console.print(
            f"lineage: run {lineage['ray_run_name']} · dataset {lineage['dataset_version']} · "
            f"commit {commit} · params {lineage['params_hash']}",
            highlight=False,
        )


@app.command("list")
def list_(
    name: str | None = typer.Argument(None, help="Only this model."),
    all_: bool = typer.Option(False, "--all", help="Include archived versions."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List model versions (newest first)."""
    from rich.table import Table

    from reasonbrain.registry.api import open_registry

    with open_registry() as reg:
        versions = reg.list_versions(name, include_archived=all_)
    if as_json:
        for mv in versions:
            typer.echo(json.dumps(_summary(mv)))
        return
    if not versions:
        console.print("no model versions registered")
        return
    table = Table("model", "version", "aliases", "size", "created", "run", "archived")
    for mv in versions:
        table.add_row(
            mv.name,
            str(mv.version),
            ", ".join(sorted(a.alias for a in mv.aliases)),
            _size(mv.size_bytes),
            mv.created_at.strftime("%Y-%m-%d %H:%M"),
            mv.run_id or "",
            "yes" if mv.archived_at else "",
        )
    console.print(table)


@app.command("show")
def show(ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS.")) -> None:
    """Show one version: store URI, checksums, lineage, aliases and files (JSON)."""
    from reasonbrain.registry.api import open_registry

    with open_registry() as reg:
        mv = reg.get(ref)
    doc = _summary(mv) | {"lineage": mv.lineage, "description": mv.description, "files": mv.files}
    typer.echo(json.dumps(doc, indent=2))


@app.command("promote")
def promote(
    ref: str = typer.Argument(..., help="NAME@VERSION (or NAME@ALIAS) to promote."),
    alias: str = typer.Option("production", "--alias", help="Alias to move."),
) -> None:
    """Point an alias (default: production) at a version, atomically."""
    from reasonbrain.registry.api import open_registry

    with open_registry() as reg:
        mv = reg.promote(ref, alias)
    console.print(f"[green]{mv.name}@{alias}[/] → [bold]{mv.ref}[/]")


@app.command("pull")
def pull(
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."),
    out: Path = typer.Option(..., "--out", help="Directory to create."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out directory."),
) -> None:
    """Download a version, verifying every sha256 (corrupted bytes are refused)."""
    from reasonbrain.registry.api import open_registry

    with open_registry() as reg:
        mv = reg.pull(ref, out, force=force)
    console.print(f"[green]pulled[/] [bold]{mv.ref}[/] ({_size(mv.size_bytes)}, verified) → {out}")


@app.command("archive")
def archive(
    ref: str = typer.Argument(..., help="NAME@VERSION to archive."),
    force: bool = typer.Option(False, "--force", help="Also drop the aliases it holds."),
) -> None:
    """Hide a version from `list` and bare-name lookups (its bytes are kept)."""
    from reasonbrain.registry.api import open_registry

    with open_registry() as reg:
        mv = reg.archive(ref, force=force)
    console.print(f"[yellow]archived[/] [bold]{mv.ref}[/]")


@app.command("gc")
def gc(
    min_age: float = typer.Option(
        3600.0, "--min-age", help="Seconds: leave orphans with a younger object alone."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only."),
) -> None:
    """Delete stored bytes of failed registrations; repair commit markers.

    Never deletes a committed version or a registration still uploading (its in-flight marker
    is refreshed by a heartbeat); refuses to run when the store and the database do not belong
    together. Exit code 1 when some deletions failed.
    """
    from reasonbrain.registry.api import open_registry

    with open_registry() as reg:
        report = reg.gc(min_age_s=min_age, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"gc: {verb} {len(report.orphans)} orphan(s) ({report.objects_deleted} objects); "
        f"repaired {len(report.manifests_repaired)} manifest(s); "
        f"kept {len(report.kept_recent)} recent, {len(report.kept_in_flight)} in flight"
    )
    for key in report.orphans:
        console.print(f"  {verb} {key}")
    for ref in report.missing:
        console.print(f"  [yellow]missing[/] {ref}")
    for line in report.failed:
        console.print(f"  [red]failed[/] {line}")
    if report.failed:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the metadata database up (default: to the newest schema)."""
    from reasonbrain.config import get_settings
    from reasonbrain.registry.db import (
        connection_errors,
        current_revision,
        make_engine,
        safe_url,
        upgrade,
    )

    url = get_settings().resolved_db_url()
    engine = make_engine(url)
    try:
        with connection_errors(url):
            upgrade(engine, revision)
            console.print(f"{safe_url(url)} at revision [bold]{current_revision(engine)}[/]")
    finally:
        engine.dispose()


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="Target revision ('base' drops every table)."),
    yes: bool = typer.Option(False, "--yes", help="Confirm (downgrading may drop data)."),
) -> None:
    """Migrate the metadata database down."""
    from reasonbrain.config import get_settings
    from reasonbrain.errors import RegistryError
    from reasonbrain.registry.db import (
        connection_errors,
        current_revision,
        downgrade,
        make_engine,
        safe_url,
    )

    if not yes:
        raise RegistryError("downgrade may drop data", where=revision, fix="pass --yes to confirm")
    url = get_settings().resolved_db_url()
    engine = make_engine(url)
    try:
        with connection_errors(url):
            downgrade(engine, revision)
            console.print(f"{safe_url(url)} at revision [bold]{current_revision(engine)}[/]")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest one."""
    from reasonbrain.config import get_settings
    from reasonbrain.registry.db import (
        connection_errors,
        current_revision,
        head_revision,
        make_engine,
        safe_url,
    )

    url = get_settings().resolved_db_url()
    engine = make_engine(url)
    try:
        with connection_errors(url):
            console.print(
                f"{safe_url(url)}: {current_revision(engine)} (newest: {head_revision()})"
            )
    finally:
        engine.dispose()


@app.command("demote")
def demote(
    ref: str = typer.Argument(..., help="NAME@ALIAS to remove, e.g. tiny-editor@staging."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Remove an alias (the version it named stays registered)."""
    from reasonbrain.errors import RegistryError
    from reasonbrain.registry.api import open_registry
    from reasonbrain.registry.refs import parse_ref

    r = parse_ref(ref)
    if r.alias is None:
        raise RegistryError(
            "demote needs an alias", where=ref, fix="write NAME@ALIAS, e.g. tiny-editor@staging"
        )
    with open_registry() as reg:
        current = reg.get(r)
        if not yes and not typer.confirm(f"Remove {r} (now {current.ref})?", default=False):
            raise typer.Exit(1)
        mv = reg.demote(r.name, r.alias)
    console.print(f"[yellow]removed[/] [bold]{r}[/] (was {mv.ref})")
