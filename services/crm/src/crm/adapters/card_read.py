"""The customer card in one statement: every part of it, one round trip.

A card has eight parts (the live customer, identities, attributes, consents, the latest orders
and their shipments, the tickets of the customer and of every id merged into it, the last
message). Read with a query each, a card cost nine round trips and as many statement executions
in SQLAlchemy and asyncpg; on a busy machine each round trip also waits for the database
process to be scheduled. Here the parts are one `UNION ALL` whose members share a common row
shape: a `part` name, text slots, time slots, integer slots and a boolean slot. Each member
puts its columns into the slots of their type and `read_card` gives them their names back. The
statement is built once (its parameters are the tenant and the requested id), so SQLAlchemy
compiles it once and asyncpg prepares it once per connection; PostgreSQL plans every member
as an index scan on `customer_id` (or `merged_into`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime, TypeEngine

from crm.adapters import orm
from crm.domain.model import Status
from sbkit.db.tables import BigId

MAX_ORDERS = 50
MAX_TICKETS = 50

# The common row: how many slots of each type the widest part needs (tickets: six texts).
SLOTS: dict[str, tuple[TypeEngine[Any], int]] = {
    "s": (Text(), 6),
    "t": (orm.TS, 2),
    "n": (BigId, 2),
    "b": (Boolean(), 1),
}

REQUESTED = bindparam("requested_id", type_=String())
TENANT = bindparam("tenant_id", type_=String())


def _slot_kind(col: ColumnElement[Any]) -> str:
    """Which slot type a column goes into."""
    t = col.type
    impl = getattr(t, "impl", t)
    if isinstance(impl, DateTime):
        return "t"
    if isinstance(impl, Integer):
        return "n"
    if isinstance(impl, Boolean):
        return "b"
    return "s"


def _layout(cols: list[ColumnElement[Any]]) -> dict[str, str]:
    """Field name -> slot label (s1, t1, ...) for a part's columns, in order."""
    used = {kind: 0 for kind in SLOTS}
    out: dict[str, str] = {}
    for col in cols:
        kind = _slot_kind(col)
        used[kind] += 1
        if used[kind] > SLOTS[kind][1]:
            raise ValueError(f"a card part needs more than {SLOTS[kind][1]} {kind} slots")
        out[str(col.key)] = f"{kind}{used[kind]}"
    return out


LAYOUTS: dict[str, dict[str, str]] = {}


def _part(name: str, cols: list[ColumnElement[Any]]) -> Select[Any]:
    """A member of the union: the part's name, its columns in their slots, typed NULLs elsewhere."""
    layout = _layout(cols)
    LAYOUTS[name] = layout
    by_slot = {slot: col for col, slot in zip(cols, layout.values(), strict=True)}
    row: list[ColumnElement[Any]] = [literal_column(f"'{name}'", Text()).label("part")]
    for kind, (type_, count) in SLOTS.items():
        for n in range(1, count + 1):
            slot = f"{kind}{n}"
            value = by_slot.get(slot)
            # a column keeps its SQL (SQLite's CAST AS DATETIME would turn text into a number);
            # an empty slot is a NULL cast to the slot's type, so PostgreSQL can unify the members
            typed = type_coerce(value, type_) if value is not None else cast(null(), type_)
            row.append(typed.label(slot))
    return select(*row)


def _resolution() -> tuple[Any, Any, Any]:
    """CTEs of the live card the requested id resolves to (following merges, as
    `CustomerRepository.live` does), its id as a scalar subquery, and every id merged into it."""
    c = orm.customers.c
    # the requested id and, while merged, the card it was merged into
    chain = (
        select(c.id, c.status, c.merged_into, c.created_at)
        .where(c.tenant_id == TENANT, c.id == REQUESTED)
        .cte("chain", recursive=True)
    )
    chain = chain.union(
        select(c.id, c.status, c.merged_into, c.created_at).where(
            c.tenant_id == TENANT, c.id == chain.c.merged_into, chain.c.status == Status.MERGED
        )
    )
    live = select(chain.c.id, chain.c.created_at).where(chain.c.status == Status.ACTIVE).cte("live")
    live_id = select(live.c.id).scalar_subquery()
    # every id merged into the live card, directly or in a chain (their tickets are the card's)
    tree = select(live.c.id.label("id")).cte("tree", recursive=True)
    tree = tree.union(select(c.id).where(c.tenant_id == TENANT, c.merged_into == tree.c.id))
    return live, live_id, tree


def _statement() -> Any:
    """The card's union (built once at import)."""
    i, a, k = orm.identities.c, orm.attributes.c, orm.consents.c
    o, s, t, tl = orm.orders.c, orm.shipments.c, orm.tickets.c, orm.timeline.c
    live, live_id, tree = _resolution()
    recent = (
        select(o.id, o.order_id, o.status, o.currency, o.placed_at, o.total_minor)
        .where(o.tenant_id == TENANT, o.customer_id == live_id)
        .order_by(o.placed_at.desc(), o.id.desc())
        .limit(MAX_ORDERS)
        .cte("recent_orders")
    )
    latest_tickets = (
        select(orm.tickets)
        .where(t.tenant_id == TENANT, t.customer_id.in_(select(tree.c.id)))
        .order_by(t.updated_at.desc())
        .limit(MAX_TICKETS)
        .cte("latest_tickets")
    )
    last = (
        select(tl.occurred_at, tl.channel, tl.summary, tl.id)
        # the literal 'message' lets PostgreSQL use the partial index ix_timeline_last_message
        .where(tl.customer_id == live_id, tl.kind == literal_column("'message'"))
        .order_by(tl.occurred_at.desc(), tl.id.desc())
        .limit(1)
        .cte("last_message")
    )
    members = [
        _part("customer", [live.c.id, live.c.created_at]),
        _part("merged", [tree.c.id]).where(tree.c.id != live_id),
        _part(
            "identities", [i.id, i.kind, i.scope, i.value, i.source, i.source_ref, i.created_at]
        ).where(i.tenant_id == TENANT, i.customer_id == live_id),
        _part("attributes", [a.id, a.field, a.value, a.source, a.source_ref, a.recorded_at]).where(
            a.tenant_id == TENANT, a.customer_id == live_id
        ),
        _part(
            "consents",
            [k.id, k.channel, k.purpose, k.granted, k.source, k.source_ref, k.recorded_at],
        ).where(k.tenant_id == TENANT, k.customer_id == live_id),
        _part("orders", list(recent.c)),
        _part("shipments", [s.shipment_id, s.order_id, s.carrier, s.status, s.occurred_at]).where(
            s.tenant_id == TENANT, s.order_id.in_(select(recent.c.order_id))
        ),
        _part(
            "tickets",
            [
                latest_tickets.c.ticket_id,
                latest_tickets.c.status,
                latest_tickets.c.category,
                latest_tickets.c.subject,
                latest_tickets.c.channel,
                latest_tickets.c.order_id,
                latest_tickets.c.opened_at,
                latest_tickets.c.updated_at,
            ],
        ),
        _part("last_message", list(last.c)),
    ]
    return union_all(*members)


CARD = _statement()

# how each part's rows are ordered for the card (the union returns them in no set order)
ORDER: dict[str, tuple[tuple[str, ...], bool]] = {
    "merged": (("id",), False),
    "identities": (("id",), False),
    "attributes": (("recorded_at", "id"), False),  # oldest first: the last written wins
    "consents": (("recorded_at", "id"), False),
    "orders": (("placed_at", "id"), True),  # newest first
    "shipments": (("occurred_at",), True),
    "tickets": (("updated_at",), True),
}


async def read_card(session: AsyncSession, tenant_id: str, requested_id: str) -> dict[str, Any]:
    """Every part of the live card an id resolves to, by part name ({} if none is live)."""
    result = await session.execute(CARD, {"tenant_id": tenant_id, "requested_id": requested_id})
    parts: dict[str, list[dict[str, Any]]] = {name: [] for name in LAYOUTS}
    for row in result:
        m = row._mapping
        parts[m["part"]].append({f: m[slot] for f, slot in LAYOUTS[m["part"]].items()})
    if not parts["customer"]:
        return {}
    for name, (keys, newest_first) in ORDER.items():
        parts[name].sort(key=lambda r: tuple(r[k] for k in keys), reverse=newest_first)
    return parts
