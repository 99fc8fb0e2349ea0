"""Settings of the crm service (environment variables prefixed SB_)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr

from sbkit.settings import KitSettings


class CrmSettings(KitSettings):
    """The kit's settings with this service's name and defaults."""

    service: str = "crm"
    crm_tombstone_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Secret of the HMAC that erasure tombstones keep of handles; the same on "
        "every replica and never changed (old tombstones would stop matching). Unset: a "
        "random one is generated once into `<auth key dir>/crm-tombstone.secret`.",
    )

    def tombstone_secret(self) -> bytes:
        """The configured secret, else the one generated once into the key folder."""
        if self.crm_tombstone_secret is not None:
            return self.crm_tombstone_secret.get_secret_value().encode()
        path = Path(self.auth_key_dir) / "crm-tombstone.secret"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made before (or by another process just now): use it
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip().encode()
