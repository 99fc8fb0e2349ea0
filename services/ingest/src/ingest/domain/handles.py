"""Sender handles: email canonical, phones E.164, messenger ids scoped to their page or bot."""

from __future__ import annotations

from email.utils import parseaddr

import phonenumbers

from ingest.domain.errors import InvalidHandle
from ingest.domain.model import RawSender
from sbcontracts.events.common import Handle, HandleKind


def split_address(raw: str) -> tuple[str, str]:
    """(display name, address) of a From-style value. email.utils recurses as it reads comments
    and quoted parts, so a few hundred `(` or `{"a":` exhaust the stack: malformed input too."""
    try:
        return parseaddr(raw)
    except RecursionError as exc:
        raise InvalidHandle("address nested too deep") from exc


def canonical_email(raw: str) -> str:
    """The address part of `raw`, trimmed and lower-cased (local parts are case-blind in practice)."""
    _, addr = split_address(raw.strip())
    local, at, domain = addr.rpartition("@")
    if not at or not local or "." not in domain or " " in addr:
        raise InvalidHandle("not an email address")
    try:
        domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidHandle("bad email domain") from exc
    return f"{local.lower()}@{domain.lower()}"


def e164(raw: str, region: str | None) -> str:
    """A phone number in E.164, reading national numbers in the channel's default region."""
    cleaned = raw.strip().removeprefix("whatsapp:").removeprefix("tel:")
    try:
        number = phonenumbers.parse(cleaned, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidHandle("not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidHandle("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_handle(raw: RawSender, *, region: str | None) -> Handle:
    """The normalised handle of a raw sender."""
    value = raw.value.strip()
    if not value:
        raise InvalidHandle("empty sender")
    if raw.kind is HandleKind.EMAIL:
        value = canonical_email(value)
    elif raw.kind is HandleKind.PHONE:
        value = e164(value, region)
    if len(value) > 320:
        raise InvalidHandle("sender too long")
    if raw.scope is not None and len(raw.scope) > 200:
        raise InvalidHandle("sender scope (page or bot id) too long")
    return Handle(kind=raw.kind, value=value, scope=raw.scope)
