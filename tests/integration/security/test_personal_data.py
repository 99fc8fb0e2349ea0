"""Personal data (issue 10): never in logs; after erasure, in no table of any service.

The whole pipeline runs in embedded mode on PostgreSQL (a database of its own on the test
server, one schema per service) with the services' JSON logging configured as in production
but at DEBUG, so every level a service can run at is captured (the kit's handler, the
libraries' loggers included). A planted person writes on WhatsApp and the web chat, orders,
calls, answers a survey and gets replies. No log line names them. Then the integrator erases
the customer; once `customer.erased` has been consumed everywhere, every text and JSON column of
every table of every service schema is scanned for the person's name, email and phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sbkit.logging import configure_logging
from sbkit.settings import KitSettings
from switchboard.embedded import create_app
from tests.e2e.deployments import Embedded, Tenant
from tests.integration.security.test_tenant_isolation_events import Person, _settled, _traffic

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]
PERSON = Person(
    "acme", "Krystyna Zapomniana", "krystyna.zapomniana@poczta.pl", "+48605123987",
    "48605123987", "Agent Ala", "sekret-krystyny",
)  # fmt: skip
SERVICES = ("ingest", "crm", "routing", "analytics", "notifier")


def _needles(p: Person) -> set[str]:
    """Every spelling of the person the services could store or print."""
    local = p.phone.removeprefix("+48")
    return {p.name, p.name.split()[1], p.email, p.email.split("@")[0], p.phone, p.wa_id, local}


@contextlib.asynccontextmanager
async def database(pg_url: str) -> AsyncIterator[str]:
    """A database of its own on the test server (services make their schemas in it)."""
    name = "pii_" + uuid.uuid4().hex[:10]
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_url.rsplit("/", 1)[0] + "/" + name
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()


async def _scan(url: str) -> list[str]:
    """(schema.table.column) cells holding any needle, over every text/json column."""
    found: list[str] = []
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT table_schema, table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = ANY(:schemas) AND data_type IN"
                    " ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')"
                ),
                {"schemas": list(SERVICES)},
            )
        ).all()
        for schema, table, column in columns:
            for needle in _needles(PERSON):
                hit = await conn.execute(
                    text(
                        f'SELECT count(*) FROM "{schema}"."{table}"'
                        f" WHERE strpos(lower(convert_from(convert_to(\"{column}\"::text, 'UTF8'),"
                        f" 'UTF8')), lower(:needle)) > 0"
                    ),
                    {"needle": needle},
                )
                if hit.scalar_one():
                    found.append(f"{schema}.{table}.{column} holds {needle!r}")
    await engine.dispose()
    return found


@dataclass
class Run:
    """What the scenario left: every log line of the services, cells still naming the person."""

    lines: list[str]
    remaining: list[str]


@pytest.fixture(scope="module")
async def run(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    tmp_path = tmp_path_factory.mktemp("pii")
    buffer, env = io.StringIO(), {"SB_OUTBOX_POLL_MS": "30", "SB_TIMER_POLL_MS": "100"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    async with database(pg_url) as url:
        try:
            with contextlib.redirect_stderr(buffer):  # the services' log stream, every level
                configure_logging(level="DEBUG", json=True)
                await _scenario(url, tmp_path)
        finally:
            configure_logging(level="WARNING", json=True)
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        yield Run(buffer.getvalue().splitlines(), await _scan(url))


async def _scenario(url: str, tmp_path: Path) -> None:
    settings = KitSettings(
        service="switchboard",
        local_bus_path=str(tmp_path / "bus.db"),
        auth_key_dir=str(tmp_path / "keys"),
        database_url=url,
        log_level="DEBUG",
    )
    app = create_app(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the test's own client, not a service
    async with app.router.lifespan_context(app):
        embedded = Embedded(app, tmp_path / "keys", timeout_s=60)
        t = Tenant(embedded, PERSON.tenant, embedded.token(PERSON.tenant))
        await _traffic(t, PERSON)
        await _settled(embedded)
        [card] = await t.ok("GET", "/v1/customers", params={"email": PERSON.email})
        await t.ok("DELETE", f"/v1/customers/{card['id']}")
        await _settled(embedded)
        await asyncio.sleep(1)  # relays publish what the erasure consumers wrote
        await _settled(embedded)
        await embedded.aclose()


def test_no_log_line_names_the_person(run: Run) -> None:
    leaked = [ln for ln in run.lines if any(n.lower() in ln.lower() for n in _needles(PERSON))]
    print(
        f"\nlog lines of the services at DEBUG: {len(run.lines)}; naming the person: {len(leaked)}"
    )
    assert any("service.started" in ln for ln in run.lines), "the services' logs were not captured"
    assert not leaked, "\n".join(leaked[:20])


def test_after_erasure_no_table_of_any_service_names_the_person(run: Run) -> None:
    print(f"\nafter erasure, cells naming the person: {len(run.remaining)}")
    for cell in run.remaining:
        print(f"  {cell}")
    assert not run.remaining, "\n".join(run.remaining)
