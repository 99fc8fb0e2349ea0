"""Channel secrets sealed at rest with Fernet (AES-128-CBC + HMAC) when a key is configured."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken

_SEALED = "sealed"


class SecretUnreadable(RuntimeError):
    """Stored secrets that the configured key cannot open (wrong or rotated-out key)."""


class SecretBox:
    """Seals a secrets dict into `{"sealed": token}`; without a key it stores them as given."""

    def __init__(self, key: str | None = None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    def seal(self, secrets: dict[str, str]) -> dict[str, str]:
        """The stored form of `secrets`."""
        if self._fernet is None:
            return dict(secrets)
        return {_SEALED: self._fernet.encrypt(json.dumps(secrets).encode()).decode()}

    def open(self, stored: dict[str, str] | None) -> dict[str, str]:
        """The secrets of a stored form (plain rows from before a key was set still open)."""
        stored = dict(stored or {})
        if _SEALED not in stored:
            return stored
        if self._fernet is None:
            raise SecretUnreadable("channel secrets are sealed but no SB_INGEST_SECRETS_KEY is set")
        try:
            opened = json.loads(self._fernet.decrypt(stored[_SEALED].encode()))
        except (InvalidToken, ValueError) as exc:
            raise SecretUnreadable("channel secrets cannot be opened with this key") from exc
        return {str(k): str(v) for k, v in opened.items()}
