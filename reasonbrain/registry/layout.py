"""Where a model version lives in the object store, and the registry's own records there.

Every registration gets a fresh *version root* ``models/<name>/<uid>/`` (a 32-hex uid, so no two
registrations ever share one). Under it::

    files/<path>              the model directory's files, byte for byte
    _registry/staging.json    in-flight marker: written before the first upload, refreshed by a
                              heartbeat while the registration runs, removed when it ends
    _registry/manifest.json   commit marker: written once the database row is committed

A model's own files can never collide with the registry's (a model may well ship its own
``manifest.json``), because they all sit under ``files/``. Versions registered before this layout
(database migration ``0003``) keep theirs: files directly under the root and the commit marker at
``<root>/manifest.json``; they are read as they are.

The database records each version's *store key* — the prefix of its files, relative to the store
root (``models/<name>/<uid>/files``, or the bare root for the old layout) — so the same database
and store keep working when the project directory moves or the bucket's URI changes. Keys read
back from the database are validated (:func:`layout_of`) before anything is read or written.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from reasonbrain.errors import RegistryError
from reasonbrain.registry.store import join_key

MODELS = "models"
FILES = "files"
REGISTRY_DIR = "_registry"
MANIFEST = "manifest.json"
STAGING = "staging.json"
#: written into every manifest of the current layout
FORMAT = "reasonbrain-registry/2"

_ROOT = r"models/[A-Za-z0-9][A-Za-z0-9._-]{0,199}/[0-9a-f]{32}"
_KEY_RE = re.compile(rf"^({_ROOT})(/{FILES})?$")
_LEGACY_TAIL = re.compile(rf"(?:^|/)({_ROOT})/?$")


@dataclass(frozen=True)
class VersionLayout:
    """The keys of one version (see the module docstring).

    Attributes:
        root: ``models/<name>/<uid>``.
        legacy: the layout before migration ``0003`` (files directly under ``root``).
    """

    root: str
    legacy: bool = False

    @property
    def files_prefix(self) -> str:
        """Prefix of the model's files (what the database stores as ``store_key``)."""
        return self.root if self.legacy else join_key(self.root, FILES)

    @property
    def manifest_key(self) -> str:
        """The commit marker."""
        return join_key(self.root, MANIFEST if self.legacy else f"{REGISTRY_DIR}/{MANIFEST}")

    @property
    def staging_key(self) -> str:
        """The in-flight marker."""
        return join_key(self.root, REGISTRY_DIR, STAGING)

    def file_key(self, rel: str) -> str:
        """Key of one model file (``rel`` relative to the model directory)."""
        return join_key(self.files_prefix, rel)


def new_layout(name: str) -> VersionLayout:
    """A fresh root for a registration of ``name`` (current layout)."""
    return VersionLayout(join_key(MODELS, name, uuid.uuid4().hex))


def legacy_key(store_uri: str) -> str | None:
    """The store-relative key inside a pre-``0003`` absolute ``store_uri`` (``None``: none)."""
    m = _LEGACY_TAIL.search(store_uri)
    return m.group(1) if m else None


def layout_of(store_key: str, *, where: str) -> VersionLayout:
    """The layout of a version from its store key (as stored in the database).

    Raises:
        RegistryError: the key is not one the registry writes (``..``, absolute, another
            prefix …) — a damaged or hand-edited row; nothing is read or written for it.
    """
    m = _KEY_RE.match(store_key or "")
    if not m:
        raise RegistryError(
            f"invalid store key {store_key!r}",
            where=where,
            fix="the database row was edited or is damaged; keys look like "
            "models/NAME/<32 hex>/files",
        )
    return VersionLayout(m.group(1), legacy=m.group(2) is None)


def root_of(object_key: str) -> str | None:
    """The version root an object key lies under (``None`` for keys outside any root)."""
    parts = object_key.split("/")
    if len(parts) < 4:
        return None
    root = "/".join(parts[:3])
    return root if _KEY_RE.match(root) else None


def manifest_doc(
    *,
    name: str,
    version: int,
    sha256: str,
    size_bytes: int,
    files: list[Any],
    created_at: str,
    lineage: dict[str, Any],
    store_key: str,
) -> bytes:
    """The commit marker's JSON."""
    doc = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "sha256": sha256,
        "size_bytes": size_bytes,
        "files": files,
        "created_at": created_at,
        "lineage": lineage,
        "store_key": store_key,
    }
    return json.dumps(doc, indent=1).encode()


def parse_manifest(data: bytes) -> dict[str, Any] | None:
    """The commit marker's content, or ``None`` when ``data`` is not one (e.g. a model's own
    ``manifest.json`` in an old-layout root)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    ok = (
        isinstance(doc.get("name"), str)
        and isinstance(doc.get("version"), int)
        and isinstance(doc.get("sha256"), str)
        and isinstance(doc.get("files"), list)
    )
    return doc if ok else None
