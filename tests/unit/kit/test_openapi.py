"""The kit's OpenAPI: error answers documented as the problem+json the handlers render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.local import LocalBus
from sbkit.problems import PROBLEM_JSON, error_responses
from sbkit.web import create_app

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Thing(BaseModel):
    name: str


def _doc() -> dict[str, Any]:
    router = APIRouter()

    @router.post("/things", responses=error_responses(409))
    async def create(body: Thing) -> Thing:
        return body

    @router.get("/things")
    async def things() -> list[Thing]:
        return []

    app = create_app(
        title="t",
        runtimes=[],
        routers=[router],
        bus=LocalBus(":memory:"),
        verifier=TokenVerifier(Keyring()),
    )
    return app.openapi()


def test_errors_are_problem_json_and_body_routes_document_400_and_413() -> None:
    doc = _doc()
    post = doc["paths"]["/things"]["post"]["responses"]
    assert {"200", "400", "409", "413", "422"} <= set(post)
    for status in ("400", "409", "413", "422"):
        assert post[status]["content"] == PROBLEM, status
    assert "400" not in doc["paths"]["/things"]["get"]["responses"]  # no body, no parse error
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Problem"]["properties"]["status"]["type"] == "integer"


def test_metrics_are_documented_as_text_and_readiness_failure_as_503() -> None:
    paths = _doc()["paths"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert paths["/readyz"]["get"]["responses"]["503"]["content"] == PROBLEM
