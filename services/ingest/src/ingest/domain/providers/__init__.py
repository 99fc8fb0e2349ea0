"""Parsers of each provider's wire format (pure: bytes and dicts in, domain objects out)."""
