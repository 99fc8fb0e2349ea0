"""Tenants and tokens for the CLI: a small control store plus events on the control topic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, or_, select, update

from sbcontracts.envelope import new_event
from sbcontracts.events.control import TenantCreated, TokenRevoked
from sbcontracts.topics import CONTROL
from sbkit import control
from sbkit.auth import Keyring, mint
from sbkit.bus.ports import Bus
from sbkit.db.engine import make_engine, make_sessionmaker
from sbkit.db.relay import OutboxRelay
from sbkit.db.uow import UnitOfWork
from sbkit.settings import KitSettings
from sbkit.wiring import build_bus


class ControlError(Exception):
    """A control-plane request that cannot be done (unknown tenant, duplicate name)."""


@dataclass
class ControlPlane:
    """Creates tenants, mints and revokes tokens; publishes what services must know."""

    settings: KitSettings
    bus: Bus

    def __post_init__(self) -> None:
        self.engine = make_engine(self.settings.db_url(), schema=self.settings.schema_name())
        self.sessions = make_sessionmaker(self.engine)
        self.relay = OutboxRelay(self.sessions, control.tables, self.bus, service="control")

    async def _publish(self) -> None:
        while await self.relay.relay_once():
            pass

    async def create_tenant(self, name: str) -> str:
        """Register a tenant; returns its id."""
        async with UnitOfWork(self.sessions, control.tables) as uow:
            if await uow.session.scalar(
                select(control.tenants.c.id).where(control.tenants.c.name == name)
            ):
                raise ControlError(f"tenant {name!r} exists")
            tenant_id = (
                name if name.replace("-", "").isalnum() and len(name) <= 64 else uuid.uuid4().hex
            )
            await uow.session.execute(insert(control.tenants).values(id=tenant_id, name=name))
            event = new_event(
                TenantCreated(tenant_id=tenant_id, name=name), tenant_id=tenant_id, source="control"
            )
            await uow.emit(event, key=tenant_id)
            await uow.commit()
        await self._publish()
        return tenant_id

    async def mint_token(self, tenant: str, scopes: list[str], ttl_s: int) -> tuple[str, str]:
        """A token for a tenant (by name or id); returns (token id, token)."""
        ring = Keyring.load(self.settings.auth_key_dir)
        async with UnitOfWork(self.sessions, control.tables) as uow:
            t = control.tenants
            tenant_id = await uow.session.scalar(
                select(t.c.id).where(or_(t.c.name == tenant, t.c.id == tenant))
            )
            if tenant_id is None:
                raise ControlError(f"unknown tenant {tenant!r}")
            jti, token = mint(
                ring,
                tenant_id=tenant_id,
                scopes=scopes,
                ttl_s=ttl_s,
                issuer=self.settings.auth_issuer,
            )
            await uow.session.execute(
                insert(control.tokens).values(
                    id=jti,
                    tenant_id=tenant_id,
                    scopes=scopes,
                    expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
                )
            )
            await uow.commit()
        return jti, token

    async def revoke_token(self, token_id: str) -> None:
        """Revoke a token everywhere (idempotent)."""
        async with UnitOfWork(self.sessions, control.tables) as uow:
            k = control.tokens
            row = (await uow.session.execute(select(k).where(k.c.id == token_id))).first()
            if row is None:
                raise ControlError(f"unknown token {token_id!r}")
            await uow.session.execute(
                update(k).where(k.c.id == token_id).values(revoked_at=datetime.now(UTC))
            )
            event = new_event(
                TokenRevoked(
                    token_id=token_id,
                    tenant_id=row.tenant_id,
                    expires_at=row.expires_at
                    if row.expires_at.tzinfo
                    else row.expires_at.replace(tzinfo=UTC),
                ),
                tenant_id=row.tenant_id,
                source="control",
            )
            await uow.emit(event, key=row.tenant_id, topic=CONTROL.name)
            await uow.commit()
        await self._publish()


@asynccontextmanager
async def control_plane(settings: KitSettings | None = None) -> AsyncIterator[ControlPlane]:
    """A control plane with its store created and its bus started."""
    settings = settings or KitSettings(service="control")
    bus = build_bus(settings, background_connect=False)
    plane = ControlPlane(settings, bus)
    if plane.settings.schema_name():
        from sqlalchemy import text

        async with plane.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.schema_name()}"'))
    async with plane.engine.begin() as conn:
        await conn.run_sync(control.metadata.create_all)
    await bus.start()
    try:
        yield plane
    finally:
        await bus.stop()
        await plane.engine.dispose()
