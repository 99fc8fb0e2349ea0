"""Errors as RFC 9457 problem details: one domain error base, one renderer, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)
PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details (for the OpenAPI document)."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class DomainError(Exception):
    """Base of every error a use case raises; carries its HTTP status."""

    status = 400
    title = "Bad request"
    type_ = "about:blank"

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class ServiceUnavailable(DomainError):
    """Our own dependency (database, broker) is down: the caller should retry."""

    status, title = 503, "Service unavailable"


# Failures of our own infrastructure: answered 503 + Retry-After so providers and clients retry.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)
RETRY_AFTER_S = 5


class NotFound(DomainError):
    """The object does not exist (or belongs to another tenant)."""

    status, title = 404, "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    status, title = 409, "Conflict"


class Unauthorized(DomainError):
    """No valid credentials."""

    status, title = 401, "Unauthorized"


class Forbidden(DomainError):
    """Valid credentials without the right to do this."""

    status, title = 403, "Forbidden"


class PayloadTooLarge(DomainError):
    """The body is over the limit."""

    status, title = 413, "Payload too large"


def problem_response(
    status: int,
    title: str,
    *,
    detail: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem statuses a route can answer."""
    return {
        s: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Problem details"}
        for s in statuses
    }


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error as problem details."""

    async def domain(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(
            exc.status,
            exc.title,
            detail=exc.detail,
            type_=exc.type_,
            headers=exc.headers,
            **exc.extra,
        )

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return problem_response(
            422, "Unprocessable content", detail="invalid request", errors=errors
        )

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(exc.status_code, str(exc.detail or "error"))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("http.dependency_unavailable", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            503,
            "Service unavailable",
            detail="a dependency is unavailable; retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("http.unhandled", path=request.url.path, error=type(exc).__name__)
        return problem_response(500, "Internal server error")

    app.add_exception_handler(DomainError, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    for transient in TRANSIENT_ERRORS:
        app.add_exception_handler(transient, unavailable)
    app.add_exception_handler(Exception, unexpected)
