"""The OpenAPI document as the app really answers: errors are problem+json, bodies may be refused."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sbkit.problems import PROBLEM_JSON, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Any route taking a body can answer these before its handler runs: a body that is not text in
# its declared encoding (FastAPI's 400) and one over the size limit (BodyLimit's 413).
BODY_ERRORS = {"400": "Body not parseable", "413": "Body over the size limit"}
# Any authenticated route (it documents 401) takes a token of its tenant's rate limit first.
RATE_LIMITED = "Over the tenant's request rate; retry after Retry-After seconds"


def complete_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` document every error as the problem details the handlers render."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            app.openapi_schema = problem_details(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def problem_details(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite error responses (4xx/5xx, FastAPI's 422 too) to problem+json, add body errors."""
    for item in doc.get("paths", {}).values():
        for op in item.values():
            responses = op.setdefault("responses", {})
            if "requestBody" in op:
                for status, description in BODY_ERRORS.items():
                    responses.setdefault(status, {"description": description})
            if "401" in responses:
                responses.setdefault("429", {"description": RATE_LIMITED})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 bodies, replaced
        if f'"#/components/schemas/{name}"' not in json.dumps(doc["paths"]):
            schemas.pop(name, None)
    return doc
