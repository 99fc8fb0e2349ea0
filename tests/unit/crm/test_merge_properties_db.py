"""The same random link/merge/undo sequences, run on the real use cases and tables (SQLite)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crm.adapters import orm
from crm.bootstrap import CrmService, bootstrap
from crm.domain.handles import HandleKey
from crm.service_layer import events, identity
from crm.service_layer.context import Ctx, provenance
from crm.service_layer.errors import CannotMerge, CannotUndo
from sbcontracts.events.crm import ProvenanceKind
from sbkit.bus.local import LocalBus
from tests.unit.crm.conftest import TENANT, message, settings_for

EMAILS = [f"p{i}@example.com" for i in range(5)]
email = st.sampled_from(EMAILS)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("message"), email),
        st.tuples(st.just("link"), email, email),
        st.tuples(st.just("merge"), email, email),
        st.tuples(st.just("merge_then_undo"), email, email),
        st.tuples(st.just("undo"), st.integers(0, 10)),
    ),
    max_size=12,
)
_TEMPLATE: list[Path] = []


def _sync(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion on a loop of its own (pytest's loop is already running)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _template() -> Path:
    """A migrated SQLite database, made once and copied for every example."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp())
        service = bootstrap(settings_for(folder), bus=LocalBus(":memory:"))

        async def migrate() -> None:
            await service.runtime.migrate()
            await service.runtime.engine.dispose()

        _sync(migrate())
        _TEMPLATE.append(folder / "crm.db")
    return _TEMPLATE[0]


async def _state(service: CrmService) -> dict[str, Any]:
    """Who owns which handle and timeline entry, and each card's status."""
    async with service.runtime.uow() as uow:
        s = uow.session
        ids = await s.execute(select(orm.identities.c.value, orm.identities.c.customer_id))
        tl = await s.execute(select(orm.timeline.c.id, orm.timeline.c.customer_id))
        cs = await s.execute(select(orm.customers.c.id, orm.customers.c.status))
        return {"handles": dict(ids.all()), "timeline": dict(tl.all()), "status": dict(cs.all())}


async def _step(service: CrmService, op: tuple[Any, ...], merges: list[str], n: int) -> None:
    """Apply one operation in its own unit of work (refusals roll back)."""
    async with service.runtime.uow() as uow:
        ctx = Ctx(uow, TENANT, tombstone_secret=b"property-test-secret")
        prov = provenance(ProvenanceKind.AGENT, "prop")
        try:
            if op[0] == "message":
                await events.on_message(ctx, f"e{n}", message(op[1], minutes=n).data)
            elif op[0] == "undo":
                if merges:
                    await identity.undo(ctx, merges[op[1] % len(merges)], prov)
            else:
                a, _ = await identity.find_or_create(ctx, HandleKey("email", op[1]), prov)
                if op[0] == "link":
                    await identity.link(ctx, a, HandleKey("email", op[2]), prov)
                else:
                    b, _ = await identity.find_or_create(ctx, HandleKey("email", op[2]), prov)
                    merges.append((await identity.merge(ctx, a, b, prov)).id)
            await uow.commit()
        except (CannotMerge, CannotUndo):
            return


def _check(state: dict[str, Any]) -> None:
    """Every handle and timeline entry belongs to a live customer (one row per handle by key)."""
    for owner in [*state["handles"].values(), *state["timeline"].values()]:
        assert state["status"][owner] == "active"


async def _run(sequence: list[tuple[Any, ...]]) -> None:
    folder = Path(tempfile.mkdtemp())
    shutil.copy(_template(), folder / "crm.db")
    service = bootstrap(settings_for(folder), bus=LocalBus(":memory:"))
    merges: list[str] = []
    try:
        for n, op in enumerate(sequence):
            if op[0] == "merge_then_undo":
                await _step(service, ("message", op[1]), merges, 1000 + n)
                await _step(service, ("message", op[2]), merges, 2000 + n)
                before = await _state(service)
                await _step(service, ("merge", op[1], op[2]), merges, n)
                if len(merges) and (await _state(service)) != before:
                    await _step(service, ("undo", len(merges) - 1), merges, n)
                    assert await _state(service) == before, "undo restores the prior state"
                continue
            await _step(service, op, merges, n)
            _check(await _state(service))
    finally:
        await service.runtime.engine.dispose()
        shutil.rmtree(folder)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_sequences_on_the_tables_keep_invariants(sequence: list[tuple[Any, ...]]) -> None:
    _sync(_run(sequence))
