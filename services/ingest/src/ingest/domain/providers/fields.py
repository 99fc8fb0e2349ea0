"""Typed access to untrusted JSON and form payloads: anything unexpected is a ParseError."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from ingest.domain.errors import ParseError
from sbcontracts.events.common import EARLIEST, LATEST

MAX_ID = 300


def load_json(raw: bytes) -> dict[str, Any]:
    """A JSON object from raw bytes."""
    try:
        # strict UTF-8 first: json.loads(bytes) would let encoded lone surrogates through
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ParseError("body is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise ParseError("body is not a JSON object")
    if b"\\u" in raw:  # an escaped lone surrogate decodes to a str no UTF-8 text can hold
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParseError("body has an invalid unicode escape") from exc
    return doc


def load_form(raw: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (last value wins, as providers send one)."""
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=1000
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError("body is not a valid form") from exc
    return dict(pairs)


def load_flat_json(raw: bytes) -> dict[str, str]:
    """A JSON object's scalar members as form-like strings (nested values are left out)."""
    flat = {}
    for key, value in load_json(raw).items():
        if isinstance(value, bool):
            flat[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            flat[key] = str(value)
    return flat


def obj(doc: Any, key: str, *, required: bool = True) -> dict[str, Any]:
    """A nested object (empty when optional and absent)."""
    value = doc.get(key) if isinstance(doc, dict) else None
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"{key} must be an object")
    return value


def items(doc: Any, key: str) -> list[dict[str, Any]]:
    """A list of objects (empty when absent)."""
    value = doc.get(key) if isinstance(doc, dict) else None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ParseError(f"{key} must be a list of objects")
    return value


def text(doc: Any, key: str, *, required: bool = False, limit: int = 1_000_000) -> str | None:
    """A string (ints accepted for ids), or None when optional and absent."""
    value = doc.get(key) if isinstance(doc, dict) else None
    if value is None or value == "":
        if required:
            raise ParseError(f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(f"{key} must be a string")
    out = str(value)
    if len(out) > limit:
        raise ParseError(f"{key} is too long")
    return out


def ident(doc: Any, key: str) -> str:
    """A required identifier."""
    value = text(doc, key, required=True, limit=MAX_ID)
    assert value is not None
    return value


def epoch(value: Any, *, millis: bool = False) -> datetime | None:
    """A Unix timestamp (seconds, or milliseconds) as an aware UTC datetime."""
    if value is None:
        return None
    try:
        number = float(value)
        at = datetime.fromtimestamp(number / 1000 if millis else number, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise ParseError("bad timestamp") from exc
    return instant(at)


def instant(at: datetime) -> datetime:
    """A provider's timestamp, refused outside the range every event's datetimes keep."""
    if not EARLIEST <= at < LATEST:
        raise ParseError(f"timestamp outside {EARLIEST.year}-{LATEST.year}")
    return at
