"""Every error of a kit app is an RFC 9457 problem: domain errors, validation, 404, 413, 500."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.local import LocalBus
from sbkit.db.engine import make_engine
from sbkit.problems import PROBLEM_JSON, Conflict, NotFound
from sbkit.web import create_app

LIMIT = 256


class Note(BaseModel):
    text: str
    priority: int


class Calls:
    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def app(tmp_path: Path, calls: Calls) -> AsyncIterator[FastAPI]:
    router = APIRouter()

    @router.get("/v1/tickets/{ticket_id}")
    async def ticket(ticket_id: str) -> dict[str, str]:
        raise NotFound(f"no ticket {ticket_id}")

    @router.post("/v1/tickets/{ticket_id}/close")
    async def close(ticket_id: str) -> dict[str, str]:
        raise Conflict("ticket already closed", ticket_id=ticket_id)

    @router.post("/v1/notes")
    async def create_note(note: Note) -> dict[str, Any]:
        calls.count += 1
        return note.model_dump()

    @router.post("/v1/raw")
    async def raw(request: Request) -> dict[str, int]:
        body = await request.body()
        calls.count += 1
        return {"size": len(body)}

    @router.get("/v1/db-down")
    async def db_down() -> None:
        engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/x")
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals at /srv/db password=hunter2")

    application = create_app(
        title="problems",
        runtimes=[],
        routers=[router],
        bus=LocalBus(":memory:"),
        verifier=TokenVerifier(Keyring.load(tmp_path / "keys")),
        max_body_bytes=LIMIT,
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # the server error middleware re-raises after answering (for the server to log): see the answer
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://problems") as c:
        yield c


def problem(response: httpx.Response, status: int, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank"
    assert body["title"] == title
    assert body["status"] == status
    return body


async def test_not_found_error_renders_a_problem(client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/v1/tickets/T-9"), 404, "Not found")
    assert body["detail"] == "no ticket T-9"


async def test_conflict_error_renders_a_problem_with_its_extra_members(
    client: httpx.AsyncClient,
) -> None:
    body = problem(await client.post("/v1/tickets/T-1/close"), 409, "Conflict")
    assert body["detail"] == "ticket already closed"
    assert body["ticket_id"] == "T-1"


async def test_invalid_body_is_422_with_each_error(client: httpx.AsyncClient, calls: Calls) -> None:
    body = problem(
        await client.post("/v1/notes", json={"priority": "high"}), 422, "Unprocessable content"
    )
    assert body["detail"] == "invalid request"
    locations = sorted(tuple(e["loc"]) for e in body["errors"])
    assert locations == [("body", "priority"), ("body", "text")]
    assert all(e["msg"] and e["type"] for e in body["errors"])
    assert calls.count == 0


async def test_body_that_is_not_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/notes", content=b"{not json", headers={"content-type": "application/json"}
    )
    body = problem(response, 422, "Unprocessable content")
    assert body["errors"]


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    problem(await client.get("/v1/nowhere"), 404, "Not Found")


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    problem(await client.delete("/v1/notes"), 405, "Method Not Allowed")


async def test_body_over_the_declared_limit_is_413_and_the_route_never_runs(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    note = {"text": "x" * (LIMIT * 2), "priority": 1}
    body = problem(await client.post("/v1/notes", json=note), 413, "Payload too large")
    assert body["detail"] == f"body over {LIMIT} bytes"
    assert calls.count == 0


async def chunks(total: int, size: int = 64) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("path", ["/v1/notes", "/v1/raw"])
async def test_chunked_body_over_the_limit_is_413_and_the_route_never_completes(
    client: httpx.AsyncClient, calls: Calls, path: str
) -> None:
    response = await client.post(
        path, content=chunks(LIMIT * 4), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    body = problem(response, 413, "Payload too large")
    assert body["detail"] == f"body over {LIMIT} bytes"
    assert calls.count == 0


async def test_chunked_body_under_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/raw", content=chunks(LIMIT - 10, size=16))
    assert response.status_code == 200
    assert response.json() == {"size": LIMIT - 10}


async def test_database_down_is_a_503_problem_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/db-down")
    problem(response, 503, "Service unavailable")
    assert response.headers["retry-after"].isdigit()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


async def test_unexpected_error_is_a_500_problem_without_internals(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/boom")
    body = problem(response, 500, "Internal server error")
    assert "detail" not in body
    for leak in ("hunter2", "Traceback", "RuntimeError", "/srv/db"):
        assert leak not in response.text
