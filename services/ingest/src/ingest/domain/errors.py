"""Errors the pure ingest domain raises (entrypoints map them to problem responses)."""

from __future__ import annotations


class ParseError(ValueError):
    """The only error a provider payload parser lets escape: malformed input (400)."""


class SignatureError(Exception):
    """The request's signature, token or timestamp does not authenticate it (401/403)."""


class InvalidHandle(ParseError):
    """A sender identifier that cannot be normalised."""
