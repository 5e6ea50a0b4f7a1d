"""Model registry and run metadata (issue 6): object store, SQL schema, registry API, local stack.

Public API (imported lazily, so ``import reasonbrain.registry`` stays cheap)::

    from reasonbrain.registry import register_model, resolve_model_ref, open_registry
    mv = register_model("out/model", "tiny-editor", run_id=None)
    path = resolve_model_ref("registry://tiny-editor@production")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reasonbrain.registry.api import (
        Registry,
        open_registry,
        register_model,
        resolve_model_ref,
    )
    from reasonbrain.registry.db import open_db
    from reasonbrain.registry.gc import GcReport
    from reasonbrain.registry.refs import ModelRef, parse_ref
    from reasonbrain.registry.store import ObjectStore, open_store

_EXPORTS = {
    "GcReport": "gc",
    "Registry": "api",
    "open_registry": "api",
    "register_model": "api",
    "resolve_model_ref": "api",
    "open_db": "db",
    "ModelRef": "refs",
    "parse_ref": "refs",
    "ObjectStore": "store",
    "open_store": "store",
}
__all__ = [
    "GcReport",
    "ModelRef",
    "ObjectStore",
    "Registry",
    "open_db",
    "open_registry",
    "open_store",
    "parse_ref",
    "register_model",
    "resolve_model_ref",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"reasonbrain.registry.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'reasonbrain.registry' has no attribute {name!r}")
