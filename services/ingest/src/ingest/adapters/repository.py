"""Every query of the ingest service (use cases never build SQL themselves)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.adapters.orm import accepted, channels, idempotency_keys, messages


def _now() -> datetime:
    return datetime.now(UTC)


async def message_by_id(session: AsyncSession, tenant_id: str, message_id: str) -> Any | None:
    """The stored normalised message of this tenant, or None."""
    row = await session.execute(
        select(messages.c.payload).where(
            messages.c.tenant_id == tenant_id, messages.c.id == message_id
        )
    )
    return row.scalar_one_or_none()


async def messages_by_ids(
    session: AsyncSession, tenant_id: str, message_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The stored payloads of these messages of this tenant, by id (unknown ids are absent)."""
    rows = await session.execute(
        select(messages.c.id, messages.c.payload).where(
            messages.c.tenant_id == tenant_id, messages.c.id.in_(message_ids)
        )
    )
    return {r.id: dict(r.payload) for r in rows}


async def replace_payload(
    session: AsyncSession, tenant_id: str, message_id: str, payload: dict[str, Any]
) -> None:
    """Overwrite a stored message's payload (erasure)."""
    await session.execute(
        update(messages)
        .where(messages.c.tenant_id == tenant_id, messages.c.id == message_id)
        .values(payload=payload)
    )


def _insert_new(session: AsyncSession, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (PostgreSQL or SQLite): rows with a known key are skipped.

    Executed with a list of rows: one cached statement that SQLAlchemy sends as multi-row
    VALUES batches ("insertmanyvalues"), instead of compiling a statement per row count.
    """
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert_(table).on_conflict_do_nothing()


async def add_new_messages(
    session: AsyncSession, rows: list[tuple[str, str, dict[str, Any]]]
) -> set[str]:
    """Insert (tenant, message id, payload) rows whose natural key is new; the ids inserted.

    One statement for all rows; a row whose key another transaction is inserting waits for it
    and is skipped if that one commits.
    """
    if not rows:
        return set()
    now = _now()
    values = [
        {
            "id": message_id,
            "tenant_id": tenant_id,
            "channel": payload["channel"],
            "provider_message_id": payload["provider_message_id"],
            "received_at": now,
            "payload": payload,
        }
        for tenant_id, message_id, payload in rows
    ]
    stmt = _insert_new(session, messages).returning(messages.c.id)
    return set((await session.execute(stmt, values)).scalars())


async def message_ids_by_natural(
    session: AsyncSession, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str]:
    """Our ids of messages already accepted under these (tenant, channel, provider id) keys."""
    natural = tuple_(messages.c.tenant_id, messages.c.channel, messages.c.provider_message_id)
    rows = await session.execute(
        select(
            messages.c.tenant_id, messages.c.channel, messages.c.provider_message_id, messages.c.id
        ).where(natural.in_(keys))
    )
    return {(r[0], r[1], r[2]): r[3] for r in rows}


async def add_new_accepted(
    session: AsyncSession, rows: list[tuple[str, str, str, str]]
) -> set[tuple[str, str, str]]:
    """Record (tenant, kind, natural id, fingerprint) rows not seen before; the keys inserted."""
    if not rows:
        return set()
    now = _now()
    values = [
        {"tenant_id": t, "kind": k, "natural_id": n, "fingerprint": f, "created_at": now}
        for t, k, n, f in rows
    ]
    stmt = _insert_new(session, accepted).returning(
        accepted.c.tenant_id, accepted.c.kind, accepted.c.natural_id
    )
    return {(r[0], r[1], r[2]) for r in await session.execute(stmt, values)}


async def idempotency_key(
    session: AsyncSession, tenant_id: str, key: str
) -> tuple[str, str] | None:
    """(request hash, message id) stored under an Idempotency-Key, or None."""
    row = await session.execute(
        select(idempotency_keys.c.request_hash, idempotency_keys.c.message_id).where(
            idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
        )
    )
    found = row.first()
    return (found[0], found[1]) if found else None


async def add_idempotency_key(
    session: AsyncSession, *, tenant_id: str, key: str, request_hash: str, message_id: str
) -> None:
    """Remember which request an Idempotency-Key was first used for."""
    await session.execute(
        insert(idempotency_keys).values(
            tenant_id=tenant_id,
            key=key,
            request_hash=request_hash,
            message_id=message_id,
            created_at=_now(),
        )
    )


async def accepted_fingerprint(
    session: AsyncSession, tenant_id: str, kind: str, natural_id: str
) -> str | None:
    """The fingerprint stored for an accepted natural id, or None if never seen."""
    row = await session.execute(
        select(accepted.c.fingerprint).where(
            accepted.c.tenant_id == tenant_id,
            accepted.c.kind == kind,
            accepted.c.natural_id == natural_id,
        )
    )
    return row.scalar_one_or_none()


async def add_accepted(
    session: AsyncSession, *, tenant_id: str, kind: str, natural_id: str, fingerprint: str
) -> None:
    """Record a natural id as accepted (unique: a concurrent duplicate fails here)."""
    await session.execute(
        insert(accepted).values(
            tenant_id=tenant_id,
            kind=kind,
            natural_id=natural_id,
            fingerprint=fingerprint,
            created_at=_now(),
        )
    )


async def set_fingerprint(
    session: AsyncSession, *, tenant_id: str, kind: str, natural_id: str, fingerprint: str
) -> None:
    """Update the fingerprint of an accepted natural id (an order changed)."""
    await session.execute(
        update(accepted)
        .where(
            accepted.c.tenant_id == tenant_id,
            accepted.c.kind == kind,
            accepted.c.natural_id == natural_id,
        )
        .values(fingerprint=fingerprint)
    )


async def channel(session: AsyncSession, tenant_id: str, channel_id: str) -> dict[str, Any] | None:
    """A channel configuration of this tenant (secrets included: for verification only)."""
    row = await session.execute(
        select(channels).where(channels.c.tenant_id == tenant_id, channels.c.id == channel_id)
    )
    found = row.mappings().first()
    return dict(found) if found else None


async def channels_of(session: AsyncSession, tenant_id: str) -> list[dict[str, Any]]:
    """Every channel configuration of a tenant, oldest first."""
    rows = await session.execute(
        select(channels)
        .where(channels.c.tenant_id == tenant_id)
        .order_by(channels.c.created_at, channels.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def add_channel(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert a channel configuration."""
    now = _now()
    await session.execute(insert(channels).values(**values, created_at=now, updated_at=now))


async def update_channel(
    session: AsyncSession, *, tenant_id: str, channel_id: str, values: dict[str, Any]
) -> None:
    """Change a channel configuration."""
    await session.execute(
        update(channels)
        .where(channels.c.tenant_id == tenant_id, channels.c.id == channel_id)
        .values(**values, updated_at=_now())
    )
