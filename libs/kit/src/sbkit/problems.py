"""Errors as RFC 9457 problem details: one domain error base, one renderer, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
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

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra


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
    status: int, title: str, *, detail: str | None = None, type_: str = "about:blank", **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
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
            exc.status, exc.title, detail=exc.detail, type_=exc.type_, **exc.extra
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

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("http.unhandled", path=request.url.path, error=type(exc).__name__)
        return problem_response(500, "Internal server error")

    app.add_exception_handler(DomainError, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, unexpected)
