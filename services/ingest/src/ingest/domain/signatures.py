"""Provider signature schemes, verified on the raw bytes in constant time before any parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from ingest.domain.errors import SignatureError


def _equal(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise SignatureError("signature mismatch")


def verify_hub_signature(secret: str, raw: bytes, header: str | None) -> None:
    """Meta `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256(app secret, raw body)."""
    if not secret:
        raise SignatureError("channel has no app secret")
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    _equal(f"sha256={digest}", (header or "").lower() or None)


def verify_body_hmac(secret: str, raw: bytes, header: str | None) -> None:
    """Our own scheme for raw MIME posts: `sha256=<hex>` of HMAC-SHA256(secret, raw body)."""
    verify_hub_signature(secret, raw, header)


def verify_secret_token(expected: str, header: str | None) -> None:
    """Telegram `X-Telegram-Bot-Api-Secret-Token` equals the secret set with setWebhook."""
    if not expected:
        raise SignatureError("channel has no secret token")
    _equal(expected, header)


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """base64(HMAC-SHA1(auth token, full URL + POST params sorted by name, name+value))."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    mac = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def verify_twilio(auth_token: str, url: str, params: dict[str, str], header: str | None) -> None:
    """Check `X-Twilio-Signature` over the URL Twilio called and the form parameters."""
    if not auth_token:
        raise SignatureError("channel has no auth token")
    _equal(twilio_signature(auth_token, url, params), header)


def verify_twilio_body(auth_token: str, url: str, raw: bytes, header: str | None) -> None:
    """Twilio's scheme for JSON bodies: the URL it calls carries `bodySHA256` (hex SHA-256 of the
    raw body) and `X-Twilio-Signature` covers that URL alone, with no parameters appended."""
    if not auth_token:
        raise SignatureError("channel has no auth token")
    _equal(twilio_signature(auth_token, url, {}), header)
    declared = parse_qs(urlsplit(url).query).get("bodySHA256", [""])[-1]
    _equal(hashlib.sha256(raw).hexdigest(), declared.lower() or None)


def verify_mailgun(
    signing_key: str,
    *,
    timestamp: str | None,
    token: str | None,
    signature: str | None,
    now: float,
    window_s: int,
) -> None:
    """HMAC-SHA256(signing key, timestamp + token) in hex, and the timestamp inside the window."""
    if not signing_key or not timestamp or not token:
        raise SignatureError("missing signing key, timestamp or token")
    digest = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256)
    _equal(digest.hexdigest(), signature)
    try:
        age = now - float(timestamp)
    except ValueError as exc:
        raise SignatureError("bad timestamp") from exc
    if abs(age) > window_s:
        raise SignatureError("stale timestamp")
