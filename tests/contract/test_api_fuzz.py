"""API fuzzing (issue 10): schemathesis against every service's OpenAPI, in-process.

Each service's app runs as its process builds it (lifespan: migrations, consumers) over SQLite
and a local bus; tenant A first plants real objects (the tenant-isolation planters), so the
generated calls reach handlers with ids that exist as well as with random ones. Schemathesis
generates valid and invalid requests for every operation of the app's own OpenAPI document;
most carry a token of A with every scope, some none, a malformed one or one without scopes.
Every response must be no 5xx and conform to the document (status, content type, headers,
body schema). Hypothesis runs in a worker thread; requests go to the app on the test's loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.security.apps import SERVICES, Running, running
from tests.integration.security.test_tenant_isolation import PLANTERS, A

EXAMPLES = int(os.environ.get("SB_API_FUZZ_EXAMPLES", "100"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Long-lived responses are cut short: an event stream sends what `max_events` allows.
FIXED_QUERY = {"/v1/kpis/stream": {"max_events": 1}}
REQUEST_TIMEOUT_S = 30.0
AUTHS = ("token",) * 7 + ("none", "malformed", "no-scopes")


@dataclass
class Tally:
    """What the run saw: cases per operation, status counts, failures."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)


def _to_httpx(kwargs: dict[str, Any]) -> httpx.Request:
    """The request schemathesis would send (requests-style kwargs), as an httpx request."""
    allowed = {"method", "url", "headers", "files", "data", "params", "cookies", "json"}
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert prepared.method and prepared.url
    # requests' stubs allow a streamed body and str-or-bytes header values; prepared from
    # these kwargs the body is bytes, and httpx encodes str and bytes header values alike
    return httpx.Request(
        prepared.method,
        prepared.url,
        headers=cast(dict[str, str], dict(prepared.headers)),
        content=cast(bytes | None, body) or b"",
    )


def _summary(exc: BaseException) -> str:
    """The failure's checks, response and curl line, without schemathesis' long excerpts."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return "\n".join(ln[:300] for ln in lines[:30])


def _headers(r: Running, auth: str) -> dict[str, str]:
    if auth == "token":
        return r.auth(A)
    if auth == "no-scopes":
        return r.auth(A, scopes=())
    if auth == "malformed":
        return {"Authorization": "Bearer not.a.token"}
    return {}


def _strategies(op: Any, ids: dict[str, str]) -> st.SearchStrategy[Any]:
    """Valid and invalid cases, with random path ids and (where planted) real ones."""
    query = FIXED_QUERY.get(op.path)
    kinds = [
        op.as_strategy(GenerationMode.POSITIVE, query=query),
        op.as_strategy(GenerationMode.NEGATIVE, query=query),
    ]
    names = [p.name for p in op.path_parameters]
    if names and all(n in ids for n in names):
        known = {n: ids[n] for n in names}
        kinds.append(op.as_strategy(GenerationMode.POSITIVE, path_parameters=known, query=query))
    return st.one_of(kinds)


async def _fuzz_service(name: str, tmp_path: Path, tally: Tally) -> None:
    async with running(name, tmp_path) as r:
        plant = await PLANTERS[name](r)
        doc = (await r.client.get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(doc)
        loop = asyncio.get_running_loop()
        # A handler's crash is answered 500 (and counted), not raised into the test
        transport = httpx.ASGITransport(r.app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=r.client.base_url)

        def send(request: httpx.Request) -> httpx.Response:
            future = asyncio.run_coroutine_threadsafe(client.send(request), loop)
            return future.result(timeout=REQUEST_TIMEOUT_S)

        def fuzz(op: Any) -> None:
            label = f"{name} {op.method.upper()} {op.path}"

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=_strategies(op, plant.ids), auth=st.sampled_from(AUTHS))
            def one(case: Any, auth: str) -> None:
                kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
                kwargs["headers"] = {**kwargs.get("headers", {}), **_headers(r, auth)}
                response = send(_to_httpx(kwargs))
                tally.cases[label] += 1
                tally.statuses[response.status_code] += 1
                if label in tally.failures:
                    return
                try:
                    case.validate_response(response, checks=CHECKS)
                except (Failure, FailureGroup) as exc:
                    tally.failures[label] = _summary(exc)

            one()

        async with client:
            for result in schema.get_all_operations():
                if isinstance(result, Err):
                    raise result.err()  # an operation the schema does not describe validly
                await asyncio.to_thread(fuzz, result.ok())


@pytest.mark.parametrize("name", SERVICES)
async def test_every_operation_answers_without_5xx_and_as_documented(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for prefix in ("SB_API", "SB_INGEST"):  # fuzz the handlers, not the tenant's rate limit
        monkeypatch.setenv(f"{prefix}_RATE_PER_S", "1000000")
        monkeypatch.setenv(f"{prefix}_RATE_BURST", "1000000")
    tally = Tally()
    started = time.perf_counter()
    await _fuzz_service(name, tmp_path, tally)
    took = time.perf_counter() - started
    fewest = min(tally.cases.values())
    print(
        f"\napi fuzz {name}: {len(tally.cases)} operations, {sum(tally.cases.values())} cases "
        f"(fewest per operation {fewest}), {took:.1f} s; statuses {dict(sorted(tally.statuses.items()))}"
    )
    for label, n in sorted(tally.cases.items()):
        if n < EXAMPLES:
            print(f"  {label}: {n} cases (every distinct input of a small input space)")
    assert not tally.failures, "\n\n".join(f"{k}:\n{v}" for k, v in tally.failures.items())
