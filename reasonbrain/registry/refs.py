"""Model references: ``NAME``, ``NAME@VERSION``, ``NAME@ALIAS`` and ``registry://`` forms.

``registry://tiny-editor@production`` is what ``from_pretrained`` accepts; the CLI accepts the
same without the scheme. A bare ``NAME`` means the newest version that is not archived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reasonbrain.errors import RegistryError

SCHEME = "registry://"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of ``version``/``alias`` or neither (= latest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name.

    Raises:
        RegistryError: names must start with a letter/digit and use only ``A-Za-z0-9._-``.
    """
    if not NAME_RE.match(name or ""):
        raise RegistryError(
            f"invalid model name {name!r}",
            where="--name",
            fix="use letters, digits, '.', '_' and '-' (at most 200 characters)",
        )
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if valid (a letter first, so it never reads as a version number)."""
    if not ALIAS_RE.match(alias or ""):
        raise RegistryError(
            f"invalid alias {alias!r}",
            where="--alias",
            fix="start with a letter; use letters, digits, '_' and '-' (e.g. production)",
        )
    return alias


def parse_ref(ref: str) -> ModelRef:
    """Parse ``[registry://]NAME[@VERSION|@ALIAS]``.

    Raises:
        RegistryError: malformed reference.
    """
    raw = ref.strip()
    body = raw[len(SCHEME) :] if raw.startswith(SCHEME) else raw
    name, sep, tag = body.partition("@")
    try:
        check_name(name)
    except RegistryError:
        raise RegistryError(
            f"invalid model reference {ref!r}",
            where=ref,
            fix="write NAME, NAME@VERSION or NAME@ALIAS (e.g. registry://tiny@production)",
        ) from None
    if not sep:
        return ModelRef(name)
    if tag.isdigit() and int(tag) > 0:
        return ModelRef(name, version=int(tag))
    if ALIAS_RE.match(tag):
        return ModelRef(name, alias=tag)
    raise RegistryError(
        f"invalid version or alias {tag!r} in {ref!r}",
        where=ref,
        fix="versions are positive integers; aliases start with a letter",
    )
