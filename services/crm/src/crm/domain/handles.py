"""Handle normalisation: emails canonical and lower-cased, phones E.164 (phonenumbers)."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

import phonenumbers

# A pragmatic address check (RFC 5322 in full accepts far more than any mailbox provider does).
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+$")
KINDS = ("email", "phone", "messenger", "telegram", "webchat", "external")


class InvalidHandle(ValueError):
    """A handle that cannot be normalised; `field` names the input that carried it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, order=True)
class HandleKey:
    """A normalised handle: kind, scope ('' when none) and value."""

    kind: str
    value: str
    scope: str = ""

    def key(self) -> str:
        """The stable string form, as in the contracts' Handle.key()."""
        return f"{self.kind}:{self.scope + ':' if self.scope else ''}{self.value}"

    def hashed(self, tenant_id: str, *, secret: bytes) -> str:
        """A one-way form kept after erasure: HMAC-SHA256 of tenant and key under a secret, so
        nobody without the secret can test guesses (a phone number space is small)."""
        message = f"{tenant_id}\x00{self.key()}".encode()
        return hmac.new(secret, message, hashlib.sha256).hexdigest()


def normalise_email(raw: str, *, field: str = "email") -> str:
    """The canonical lower-cased address, or InvalidHandle."""
    value = raw.strip().lower()
    if len(value) > 320 or not _EMAIL.match(value):
        raise InvalidHandle(field, f"not a valid email address: {raw!r}")
    return value


def normalise_phone(raw: str, *, region: str | None = None, field: str = "phone") -> str:
    """The E.164 form of a phone number, or InvalidHandle."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidHandle(field, f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidHandle(field, f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(
    kind: str, value: str, scope: str | None = None, *, field: str = "handle"
) -> HandleKey:
    """Normalise any handle; emails and phones are checked, other ids trimmed."""
    if kind == "email":
        return HandleKey("email", normalise_email(value, field=field))
    if kind == "phone":
        return HandleKey("phone", normalise_phone(value, field=field))
    if kind not in KINDS:
        raise InvalidHandle(field, f"unknown handle kind {kind!r}")
    value = value.strip()
    if not value:
        raise InvalidHandle(field, "empty handle")
    return HandleKey(kind, value, (scope or "").strip())


def parse_handle(text: str, *, field: str = "handle") -> HandleKey:
    """Parse `kind:value` or `kind:scope:value` (the Handle.key() form)."""
    kind, _, rest = text.partition(":")
    if not rest:
        raise InvalidHandle(field, "expected kind:value or kind:scope:value")
    if kind in ("email", "phone"):
        return normalise(kind, rest, field=field)
    scope, _, value = rest.rpartition(":")
    return normalise(kind, value, scope or None, field=field)
