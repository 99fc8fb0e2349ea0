"""The route class of every ingest router: maps parse, signature and transient errors to problems."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ingest.adapters.secret_box import SecretUnreadable
from ingest.domain.errors import ParseError, SignatureError
from sbkit.problems import RETRY_AFTER_S, ServiceUnavailable, problem_response

log = structlog.get_logger(__name__)


class IngestRoute(APIRoute):
    """Domain parse/signature errors become 400/401, our own outages 503 (the kit renders it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the FastAPI handler with the ingest error mapping."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ParseError as exc:
                return problem_response(400, "Malformed payload", detail=_short(exc))
            except ValidationError as exc:  # a provider value outside our event limits
                return problem_response(
                    400, "Malformed payload", detail=f"{exc.error_count()} errors"
                )
            except SignatureError as exc:
                return problem_response(401, "Invalid signature", detail=_short(exc))
            except (SQLAlchemyError, OSError, SecretUnreadable) as exc:  # our own failure: retry
                log.warning("ingest.db_unavailable", error=type(exc).__name__)
                raise ServiceUnavailable(
                    "retry later", headers={"Retry-After": str(RETRY_AFTER_S)}
                ) from exc

        return wrapped


def _short(exc: Exception) -> str:
    return str(exc)[:300]


def problem_statuses(*extra: int) -> tuple[int, ...]:
    """Statuses every ingest route may answer, plus `extra`."""
    return (400, 401, 403, 413, 429, 503, *extra)


def as_json(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with a status chosen at run time (200 duplicate vs 201 created)."""
    return JSONResponse(payload, status_code=status, headers=headers)
