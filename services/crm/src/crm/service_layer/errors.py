"""Errors crm's use cases raise, rendered as problem details."""

from __future__ import annotations

from sbkit.problems import Conflict, DomainError, NotFound


class CustomerNotFound(NotFound):
    """No such customer in this tenant (or erased)."""

    title = "Customer not found"


class MergeNotFound(NotFound):
    """No such merge in this tenant."""

    title = "Merge not found"


class CannotMerge(Conflict):
    """A merge with itself, or with a customer already merged away."""

    title = "Customers cannot be merged"


class CannotUndo(Conflict):
    """An undo that cannot restore both customers exactly."""

    title = "Merge cannot be undone"


class InvalidField(DomainError):
    """A field of the request is invalid (e.g. an email or phone that cannot be normalised)."""

    status, title = 422, "Unprocessable content"
