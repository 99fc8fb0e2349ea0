"""Errors routing's use cases raise (each carries its HTTP status)."""

from __future__ import annotations

from sbkit.problems import Conflict, DomainError, NotFound


class TicketNotFound(NotFound):
    """No such ticket in this tenant."""


class QueueNotFound(NotFound):
    """No such queue in this tenant."""


class AgentNotFound(NotFound):
    """No such agent in this tenant."""


class InvalidStatus(Conflict):
    """The case's status does not allow this."""


class AlreadyExists(Conflict):
    """An object with this id exists."""


class NoCapacity(Conflict):
    """The agent is not online or has no room for this case."""


class Unprocessable(DomainError):
    """The request is well-formed but makes no sense (e.g. a fallback queue that is itself)."""

    status, title = 422, "Unprocessable"
