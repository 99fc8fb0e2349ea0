"""Errors of analytics' use cases (rendered as problem details)."""

from __future__ import annotations

from sbkit.problems import DomainError


class InvalidQuery(DomainError):
    """A query naming unknown KPIs, variants or groupings, or an impossible range."""

    status, title = 422, "Invalid query"
