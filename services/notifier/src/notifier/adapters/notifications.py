"""Queries of notifications (every decision with its reason), durable timers, policies, templates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters import orm
from notifier.adapters.sql import delete_later, is_postgres, memo, write_later

N = orm.notifications.c
SENT = ("sent", "delivered")
TIMER_KEY = ("tenant_id", "kind", "ref")


class Notifications:
    """Notifications, policies and templates of one tenant, in the caller's transaction."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant = tenant_id

    async def _one(self, q: Any) -> Row[Any] | None:
        return (await self.session.execute(q)).first()

    async def add(self, **values: Any) -> None:
        """Record a new notification."""
        await self.session.execute(
            insert(orm.notifications).values(tenant_id=self.tenant, **values)
        )

    async def decided(self, alert_key: str) -> bool:
        """Whether an alert was already decided (a notification has its key)."""
        preloaded = memo(self.session).get(("alerts", self.tenant), {})
        if alert_key in preloaded:
            return bool(preloaded[alert_key])
        q = select(N.id).where(N.tenant_id == self.tenant, N.alert_key == alert_key)
        return await self._one(q) is not None

    async def preload(
        self, alert_keys: Sequence[str], customer_ids: Sequence[str], *, since: datetime
    ) -> None:
        """For a batch's alerts: which were decided, and the sends of these customers since
        `since`, two statements; `decided` and `sent_times` then answer from here (a batch adds
        notifications that are not decided yet, never sends, so both stay true while it runs)."""
        known = memo(self.session)
        q = select(N.alert_key).where(N.tenant_id == self.tenant, N.alert_key.in_(alert_keys))
        found = set((await self.session.execute(q)).scalars())
        known.setdefault(("alerts", self.tenant), {}).update(
            {key: key in found for key in alert_keys}
        )
        sent: dict[str, list[datetime]] = {i: [] for i in customer_ids}
        for r in await self.session.execute(self._sent(customer_ids, since)):
            sent[r.customer_id].append(r.updated_at)
        known[("sent", self.tenant)] = (since, sent)

    def add_later(self, **values: Any) -> None:
        """Record a new notification at commit (one multi-row insert for a batch)."""
        row = {"tenant_id": self.tenant, **values}
        memo(self.session).setdefault(("alerts", self.tenant), {})[row["alert_key"]] = True
        write_later(self.session, orm.notifications, keys=(), row=row)

    async def get(self, notification_id: str, *, lock: bool = False) -> Row[Any] | None:
        """One notification of this tenant."""
        q = select(orm.notifications).where(N.tenant_id == self.tenant, N.id == notification_id)
        if lock and is_postgres(self.session):
            q = q.with_for_update()
        return await self._one(q)

    async def by_provider_id(self, provider_message_id: str) -> Row[Any] | None:
        """The notification a provider receipt is about."""
        q = select(orm.notifications).where(
            N.tenant_id == self.tenant, N.provider_message_id == provider_message_id
        )
        return await self._one(q)

    async def change(self, notification_id: str, *, now: datetime, **values: Any) -> None:
        """Update a notification, appending the decision to its history."""
        row = await self.get(notification_id)
        if row is None:
            return
        entry = {"at": now.isoformat(), "status": values.get("status", row.status)}
        entry |= {"reason": values.get("reason", row.reason), "channel": values.get("channel")}
        await self.session.execute(
            update(orm.notifications)
            .where(N.tenant_id == self.tenant, N.id == notification_id)
            .values(updated_at=now, history=[*row.history, entry], **values)
        )

    async def sent_times(self, customer_ids: Sequence[str], *, since: datetime) -> list[datetime]:
        """When these customers (one person, merges included) were last sent alerts (the cap)."""
        loaded_since, sent = memo(self.session).get(("sent", self.tenant), (since, {}))
        if loaded_since <= since and all(i in sent for i in customer_ids):
            return [t for i in customer_ids for t in sent[i] if t > since]
        return [r.updated_at for r in await self.session.execute(self._sent(customer_ids, since))]

    def _sent(self, customer_ids: Sequence[str], since: datetime) -> Any:
        return select(N.customer_id, N.updated_at).where(
            N.tenant_id == self.tenant,
            N.customer_id.in_(list(customer_ids)),
            N.status.in_(SENT),
            N.updated_at > since,
        )

    async def search(
        self, *, customer_id: str | None, order_id: str | None, status: str | None, limit: int
    ) -> Sequence[Row[Any]]:
        """Notifications matching the filters, newest first."""
        conds = [N.tenant_id == self.tenant]
        for col, value in (
            (N.customer_id, customer_id),
            (N.order_id, order_id),
            (N.status, status),
        ):
            if value is not None:
                conds.append(col == value)
        q = select(orm.notifications).where(*conds).order_by(N.created_at.desc()).limit(limit)
        return (await self.session.execute(q)).all()

    # policies and templates -----------------------------------------------------
    async def policy(self) -> dict[str, Any] | None:
        """The tenant's policy document, if set (read once per transaction)."""
        key, known = ("policy", self.tenant), memo(self.session)
        if key not in known:
            c = orm.policies.c
            row = await self._one(select(c.doc).where(c.tenant_id == self.tenant))
            known[key] = dict(row.doc) if row and row.doc else None
        return known[key]

    async def put_policy(self, doc: dict[str, Any]) -> None:
        """Replace the tenant's policy document."""
        memo(self.session).pop(("policy", self.tenant), None)
        c = orm.policies.c
        await self.session.execute(delete(orm.policies).where(c.tenant_id == self.tenant))
        await self.session.execute(insert(orm.policies).values(tenant_id=self.tenant, doc=doc))

    async def templates(self) -> Sequence[Row[Any]]:
        """The tenant's templates."""
        c = orm.templates.c
        q = select(orm.templates).where(c.tenant_id == self.tenant).order_by(c.template_id)
        return (await self.session.execute(q)).all()

    async def template(self, template_id: str) -> Row[Any] | None:
        """One template."""
        c = orm.templates.c
        q = select(orm.templates).where(c.tenant_id == self.tenant, c.template_id == template_id)
        return await self._one(q)

    async def put_template(self, template_id: str, **values: Any) -> None:
        """Create or replace a template."""
        await self.drop_template(template_id)
        await self.session.execute(
            insert(orm.templates).values(tenant_id=self.tenant, template_id=template_id, **values)
        )

    async def drop_template(self, template_id: str) -> bool:
        """Delete a template; whether it existed."""
        c = orm.templates.c
        result = await self.session.execute(
            delete(orm.templates).where(c.tenant_id == self.tenant, c.template_id == template_id)
        )
        return bool(getattr(result, "rowcount", 0))

    # durable timers -------------------------------------------------------------
    async def arm(
        self, kind: str, ref: str, *, due_at: datetime, armed_for: datetime | None = None
    ) -> None:
        """Set (or move) the one timer of this kind for `ref` (written at commit)."""
        row: dict[str, Any] = {"tenant_id": self.tenant, "kind": kind, "ref": ref}
        row |= {"due_at": due_at, "armed_for": armed_for}
        write_later(self.session, orm.timers, keys=TIMER_KEY, row=row)

    async def disarm(self, kind: str, ref: str) -> None:
        """Drop the timer of this kind for `ref`, if any (also one armed in this transaction;
        deleted at commit, one statement for a whole batch)."""
        delete_later(self.session, orm.timers, keys=TIMER_KEY, values=(self.tenant, kind, ref))


async def claim_due(session: AsyncSession, now: datetime, *, limit: int) -> Sequence[Row[Any]]:
    """Due timers of every tenant, locked for this transaction (SKIP LOCKED on PostgreSQL)."""
    t = orm.timers.c
    q = select(orm.timers).where(t.due_at <= now).order_by(t.due_at, t.id).limit(limit)
    if is_postgres(session):
        q = q.with_for_update(skip_locked=True)
    return (await session.execute(q)).all()


async def finish(session: AsyncSession, timer_id: int) -> None:
    """Remove a fired timer."""
    await session.execute(delete(orm.timers).where(orm.timers.c.id == timer_id))


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of a cap window ending now."""
    return now - window
