"""Use cases of channel configurations (per tenant; secrets write-only)."""

from __future__ import annotations

import uuid
from typing import Any

from ingest.adapters import repository as repo
from ingest.adapters.secret_box import SecretBox
from ingest.domain.channels import ChannelConfig, ChannelKind, missing_secrets
from ingest.service_layer.transactions import UowFactory, committed
from sbkit.db.uow import UnitOfWork
from sbkit.problems import DomainError, NotFound


class MissingSecrets(DomainError):
    """A channel without the secrets that authenticate its webhooks."""

    status, title = 422, "Missing channel secrets"


PLAIN = SecretBox()


def _config(row: dict[str, Any], box: SecretBox) -> ChannelConfig:
    return ChannelConfig(
        id=row["id"],
        tenant_id=row["tenant_id"],
        kind=ChannelKind(row["kind"]),
        name=row["name"],
        settings=dict(row["settings"] or {}),
        secrets=box.open(row["secrets"]),
    )


async def create_channel(
    new_uow: UowFactory,
    tenant_id: str,
    *,
    kind: ChannelKind,
    name: str,
    settings: dict[str, Any],
    secrets: dict[str, str],
    box: SecretBox = PLAIN,
) -> ChannelConfig:
    """Configure a new channel; its webhook secrets are required."""
    missing = missing_secrets(kind, secrets)
    if missing:
        raise MissingSecrets(f"{kind.value} needs {', '.join(missing)}", missing=missing)
    values = {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant_id,
        "kind": kind.value,
        "name": name,
        "settings": settings,
        "secrets": box.seal(secrets),
    }

    async def work(uow: UnitOfWork) -> None:
        await repo.add_channel(uow.session, values)

    await committed(new_uow, work)
    return _config(values, box)


async def update_channel(
    new_uow: UowFactory,
    tenant_id: str,
    channel_id: str,
    *,
    name: str | None,
    settings: dict[str, Any],
    secrets: dict[str, str],
    box: SecretBox = PLAIN,
) -> ChannelConfig:
    """Change settings (merged) and replace the secrets given; omitted secrets are kept."""

    async def work(uow: UnitOfWork) -> ChannelConfig:
        row = await repo.channel(uow.session, tenant_id, channel_id)
        if row is None:
            raise NotFound("no such channel")
        row["settings"] = {**(row["settings"] or {}), **settings}
        row["secrets"] = box.seal({**box.open(row["secrets"]), **secrets})
        row["name"] = name or row["name"]
        values = {k: row[k] for k in ("name", "settings", "secrets")}
        await repo.update_channel(
            uow.session, tenant_id=tenant_id, channel_id=channel_id, values=values
        )
        return _config(row, box)

    return await committed(new_uow, work)


async def get_channel(
    new_uow: UowFactory, tenant_id: str, channel_id: str, box: SecretBox = PLAIN
) -> ChannelConfig:
    """A channel of this tenant (other tenants' ids are not found)."""
    async with new_uow() as uow:
        row = await repo.channel(uow.session, tenant_id, channel_id)
    if row is None:
        raise NotFound("no such channel")
    return _config(row, box)


async def list_channels(
    new_uow: UowFactory, tenant_id: str, box: SecretBox = PLAIN
) -> list[ChannelConfig]:
    """Every channel of this tenant."""
    async with new_uow() as uow:
        rows = await repo.channels_of(uow.session, tenant_id)
    return [_config(r, box) for r in rows]


async def webhook_channel(
    new_uow: UowFactory,
    tenant_id: str,
    kind: ChannelKind,
    channel_id: str,
    box: SecretBox = PLAIN,
) -> ChannelConfig:
    """The channel a webhook path names; unknown tenant, id or kind mismatch → 404."""
    async with new_uow() as uow:
        row = await repo.channel(uow.session, tenant_id, channel_id)
    if row is None or row["kind"] != kind.value:
        raise NotFound("no such channel")
    return _config(row, box)
