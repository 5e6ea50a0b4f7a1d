"""Dashboard settings and who may write (review, promote, demote).

The dashboard binds to 127.0.0.1 unless told otherwise (``reasonbrain dashboard --host``). On
loopback, write actions are open to whoever can reach the port (the machine's own users) unless a
password is configured. When the server listens on any other address — including Streamlit's
default of every interface when ``server.address`` is unset — write actions need the password
from ``REASONBRAIN_DASHBOARD_PASSWORD`` or ``dashboard_password`` in Streamlit's
``secrets.toml``; with no password configured they are disabled. Reading never needs one.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY = "dashboard_password"
PASSWORD_ENV = "REASONBRAIN_DASHBOARD_PASSWORD"


class DashboardSettings(BaseSettings):
    """``REASONBRAIN_DASHBOARD_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="REASONBRAIN_DASHBOARD_", extra="ignore")

    password: SecretStr | None = Field(None, description="password for write actions")
    page_size: int = Field(12, ge=1, le=100, description="edit-browser rows per page")
    image_px: int = Field(192, ge=32, le=1024, description="side of grid images, pixels")
    image_cache_mb: int = Field(256, ge=0, description="in-memory image cache budget, MiB")


def configured_password(settings: DashboardSettings, secrets: Mapping[str, Any]) -> str | None:
    """The write password: the environment wins over ``secrets.toml`` (empty means unset)."""
    if settings.password is not None and settings.password.get_secret_value():
        return settings.password.get_secret_value()
    value = secrets.get(SECRET_KEY)
    return str(value) if value else None


def is_loopback(address: str | None) -> bool:
    """True when the server only listens on this machine (unset means every interface)."""
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WriteGate:
    """Whether write actions are allowed.

    Attributes:
        mode: ``open`` (no password needed), ``password`` (ask for it), ``closed`` (exposed and
            no password configured: read-only).
        password: the expected password (``password`` mode only).
    """

    mode: Literal["open", "password", "closed"]
    password: str | None = None

    def check(self, given: str | None) -> bool:
        """True when ``given`` unlocks writing (constant-time comparison)."""
        if self.mode == "open":
            return True
        if self.mode == "closed" or self.password is None or not given:
            return False
        return hmac.compare_digest(given.encode(), self.password.encode())


def write_gate(address: str | None, password: str | None) -> WriteGate:
    """The gate for a server bound to ``address`` with ``password`` configured (or not)."""
    if password:
        return WriteGate("password", password)
    return WriteGate("open") if is_loopback(address) else WriteGate("closed")
