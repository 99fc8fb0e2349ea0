"""Problems the ingest use cases and entrypoints raise (rendered as RFC 9457 by the kit)."""

from __future__ import annotations

from sbkit.problems import DomainError


class Malformed(DomainError):
    """The payload cannot be parsed (JSON, form, MIME or provider shape)."""

    status, title = 400, "Malformed payload"


class BadSignature(DomainError):
    """The webhook is not authenticated by the provider's signature scheme."""

    status, title = 401, "Invalid signature"


class WrongVerifyToken(DomainError):
    """A subscription handshake with the wrong verify token."""

    status, title = 403, "Verification failed"


class UnsupportedMediaType(DomainError):
    """The content type is not the one this endpoint takes."""

    status, title = 415, "Unsupported media type"


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key already used for a different request body."""

    status, title = 422, "Idempotency key reused"


class NaturalIdReused(DomainError):
    """A natural id already accepted with different content."""

    status, title = 409, "Conflicting duplicate"
