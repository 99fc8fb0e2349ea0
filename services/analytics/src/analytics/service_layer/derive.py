"""Use cases for components that depend on several events: merge an event into its entity's facts,
recompute the customer's derived contributions and add only their difference to the buckets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters import facts, repository
from analytics.domain import derived, presence
from analytics.domain.components import Bucket, Increment
from analytics.domain.derived import Alert, Case, Customer, Cycle, Dims, earliest
from analytics.service_layer import identity
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.crm import CustomerMerged, CustomerUnmerged
from sbcontracts.events.notifier import (
    NotificationData,
    NotificationDelivered,
    NotificationScheduled,
    NotificationSent,
    NotificationSuppressed,
)
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    TicketClassified,
    TicketData,
    TicketOpened,
    TicketReopened,
    TicketResolved,
)

TICKET_FACTS = (TicketOpened, TicketClassified, TicketReopened, TicketResolved)


def _dims(data: TicketData) -> Dims:
    return Dims(data.queue or "", data.channel.value if data.channel else "", data.agent_id or "")


def _cycle(who: Customer, ticket: str, n: int) -> Cycle:
    return who.cycles.setdefault((ticket, n), Cycle(ticket, n))


def _start(cycle: Cycle, data: TicketData) -> None:
    if cycle.started_at is None or data.occurred_at < cycle.started_at:
        cycle.started_at, cycle.start_dims = data.occurred_at, _dims(data)


def _classify(case: Case, data: TicketClassified) -> None:
    at = data.occurred_at
    if case.first_classified_at is None or at < case.first_classified_at:
        case.first_classified_at, case.first_classified_dims = at, _dims(data)
    if case.classified_at is None or at >= case.classified_at:
        case.classified_at = at
        case.category, case.sentiment = data.category.value, data.sentiment.value


def merge_ticket(who: Customer, data: TicketData) -> list[Case | Cycle]:
    """Fold a ticket event into the customer's facts; the entities it touched."""
    case = who.cases.setdefault(data.ticket_id, Case(data.ticket_id, data.customer_id))
    if isinstance(data, TicketOpened):
        case.opened_at = earliest(case.opened_at, data.occurred_at)
        case.order = case.order or data.order_id
        cycle = _cycle(who, data.ticket_id, 1)
        _start(cycle, data)
        return [case, cycle]
    if isinstance(data, TicketClassified):
        _classify(case, data)
        return [case]
    cycle = _cycle(who, data.ticket_id, data.cycle)
    if isinstance(data, TicketReopened):
        _start(cycle, data)
    elif isinstance(data, TicketResolved) and (
        cycle.resolved_at is None or data.occurred_at < cycle.resolved_at
    ):
        cycle.resolved_at, cycle.resolve_dims = data.occurred_at, _dims(data)
    return [case, cycle]


def merge_notification(who: Customer, data: NotificationData) -> Alert:
    """Fold a notification event into its alert's facts (earliest time of each step)."""
    a = who.alerts.setdefault(data.notification_id, Alert(data.notification_id, data.customer_id))
    at = data.occurred_at
    a.first_at = earliest(a.first_at, at)
    a.order = a.order or data.order_id
    if isinstance(data, NotificationScheduled):
        a.scheduled_at = earliest(a.scheduled_at, at)
        a.channel = data.channel.value if data.channel else a.channel
    elif isinstance(data, NotificationSent):
        a.sent_at = earliest(a.sent_at, at)
    elif isinstance(data, NotificationDelivered):
        a.delivered_at = earliest(a.delivered_at, at)
    elif isinstance(data, NotificationSuppressed):
        a.suppressed = True
    return a


def _add(deltas: repository.Deltas, diff: derived.Contribution) -> None:
    by_bucket: dict[Bucket, list[Increment]] = defaultdict(list)
    for (bucket, name, bin_), value in diff.items():
        by_bucket[bucket].append(Increment(name, value, bin_))
    for bucket, incs in by_bucket.items():
        repository.collect(deltas, bucket, incs)


def _key(data: TicketData | NotificationData) -> str:
    if isinstance(data, TicketData):
        return f"case:{data.ticket_id}"
    return f"alert:{data.notification_id}"


async def prelock(session: AsyncSession, events: Sequence[CloudEvent[Any]]) -> None:
    """Lock every customer a transaction's events will touch at once, in one fixed order (a
    batch locking them event by event could deadlock against a merge locking two of them), and
    keep the origins of their entities for `on_customer_event`."""
    ids: dict[str, set[str]] = defaultdict(set)  # to lock the customers they resolve to
    plain: dict[str, set[str]] = defaultdict(set)  # to lock as they are (roots after an undo)
    keys: dict[str, dict[str, str]] = defaultdict(dict)
    for event in events:
        data, tenant = event.data, event.tenantid
        if isinstance(data, (*TICKET_FACTS, NotificationData)):
            keys[tenant].setdefault(_key(data), data.customer_id)  # a new entity's first event
            if isinstance(data, TicketOpened):  # its opener, should the case have another origin
                ids[tenant].add(data.customer_id)
        elif isinstance(data, CustomerMerged):
            ids[tenant] |= {data.merged_id, data.survivor_id}
        elif isinstance(data, CustomerUnmerged):
            ids[tenant] |= {data.restored_id, data.survivor_id}
            plain[tenant].add(data.restored_id)
    origins = identity.txn(session).origins
    for tenant, first in keys.items():
        stored = await facts.origins(session, tenant, first)
        for key, customer in first.items():
            origins[(tenant, key)] = stored.get(key, customer)
            ids[tenant].add(origins[(tenant, key)])
    for tenant in sorted(ids):
        await identity.lock_roots(session, tenant, ids[tenant], also=plain[tenant])


def settle(
    tenant: str,
    who: Customer,
    applied: Mapping[str, str],
    deltas: repository.Deltas,
    *,
    touched: Collection[str] = (),
) -> tuple[list[Case | Cycle | Alert], dict[str, str]]:
    """Recompute a customer's contributions and collect into `deltas` each entity's difference to
    what it applied; the entities to save (changed or `touched`) and their contributions now."""
    changed: list[Case | Cycle | Alert] = []
    now_applied: dict[str, str] = {}
    contributions = derived.contributions(tenant, who)
    entities: list[Case | Cycle | Alert] = [
        *who.cases.values(),
        *who.cycles.values(),
        *who.alerts.values(),
    ]
    for entity in entities:
        key = facts.entity_key(entity)
        new = contributions.get(key, {})
        before = applied.get(key, "[]")
        encoded = facts.encode(new)
        if encoded != before:
            _add(deltas, derived.difference(new, facts.decode(tenant, before)))
        if encoded != before or key in touched:
            changed.append(entity)
            now_applied[key] = encoded
    return changed, now_applied


async def on_customer_event(
    session: AsyncSession,
    tenant: str,
    data: TicketData | NotificationData,
    deltas: repository.Deltas,
) -> None:
    """Merge the event, recompute the contributions of the customer it is grouped under, and
    collect the differences into `deltas` (upserted once per transaction, in key order: written
    here, per entity, the tenant-wide rollup rows were locked in a different order by every
    transaction, and concurrent partitions deadlocked).

    An entity is grouped under the customer its origin (who opened the case; the customer an
    alert first came with) resolves to through crm's merges; a later event of it under another id
    (routing re-keys a merged customer's cases) changes nothing about where it belongs."""
    key = _key(data)
    origin = identity.txn(session).origins.get((tenant, key))  # `prelock` looked it up
    if origin is None:
        origin = (await facts.origins(session, tenant, [key])).get(key, data.customer_id)
    if isinstance(data, TicketOpened) and origin != data.customer_id:
        # the opening names who opened the case; an event of it that came first carried the id
        # routing had re-keyed it to: the case and its cycles move to the opener's group
        roots = await identity.lock_roots(session, tenant, [origin, data.customer_id])
        await regroup(session, tenant, roots, deltas, opened_by=(data.ticket_id, data.customer_id))
        origin = identity.txn(session).origins[(tenant, key)] = data.customer_id
    (root,) = await identity.lock_roots(session, tenant, [origin])
    who, applied, origins = facts.group(await facts.grouped(session, tenant, [root]))
    touched: list[Case | Cycle | Alert] = []
    if isinstance(data, TicketData):
        touched += merge_ticket(who, data)
    else:
        touched.append(merge_notification(who, data))
    touched_keys = {facts.entity_key(e) for e in touched}
    for k in touched_keys:
        origins.setdefault(k, origin)
    changed, now_applied = settle(tenant, who, applied, deltas, touched=touched_keys)
    await facts.save(session, tenant, root, changed, applied=now_applied, origins=origins)


async def regroup(
    session: AsyncSession,
    tenant: str,
    customers: list[str],
    deltas: repository.Deltas,
    *,
    opened_by: tuple[str, str] | None = None,
) -> None:
    """Group the entities under these (locked) customers by where their origins resolve now
    (`opened_by`: a ticket's case and cycles take that origin); recompute each group and collect
    the differences into `deltas`."""
    loaded: set[str] = set()
    rows: facts.Rows = []
    roots: dict[str, str] = {}
    todo = set(customers)
    while todo:  # a group an entity joins is loaded whole (locked first, when not yet)
        if todo - set(customers):  # only while crm's events are out of order (a cycle)
            await identity.lock(session, tenant, todo)
            identity.forget(session, tenant)
        rows += [_opened_by(row, opened_by) for row in await facts.grouped(session, tenant, todo)]
        loaded |= todo
        ids = sorted({row[4] for row in rows})
        found = await identity.resolver(session, tenant).roots(ids)
        roots = dict(zip(ids, found, strict=True))
        todo = set(roots.values()) - loaded
    by_root: dict[str, facts.Rows] = defaultdict(list)
    for row in rows:
        by_root[roots[row[4]]].append(row)
    for root, mine in sorted(by_root.items()):
        who, applied, origins = facts.group(mine)
        moved = {key for was, key, entity, *_ in mine if was != root or _ticket(entity, opened_by)}
        changed, now = settle(tenant, who, applied, deltas, touched=moved)
        await facts.save(session, tenant, root, changed, applied=now, origins=origins)


def _ticket(entity: Case | Cycle | Alert, opened_by: tuple[str, str] | None) -> bool:
    return (
        opened_by is not None and isinstance(entity, Case | Cycle) and entity.ticket == opened_by[0]
    )


def _opened_by(
    row: tuple[str, str, Case | Cycle | Alert, str, str], opened_by: tuple[str, str] | None
) -> tuple[str, str, Case | Cycle | Alert, str, str]:
    was, key, entity, applied, origin = row
    if opened_by is not None and _ticket(entity, opened_by):
        origin = opened_by[1]
    return was, key, entity, applied, origin


async def on_presence(
    session: AsyncSession, tenant: str, data: AgentPresenceChanged, deltas: repository.Deltas
) -> None:
    """Insert a presence change into the agent's log and collect the correction of the online
    time it changes into `deltas`."""
    agent, at = data.agent_id, data.occurred_at
    await facts.lock(session, tenant, "agent", agent)
    prev, nxt, same = await facts.presence_around(session, tenant, agent, at)
    if same:
        return  # a second change at the same instant: the first one stands
    await facts.add_presence(session, tenant, agent, at, data.presence)
    if nxt is not None:
        spans = presence.online_change(
            at=at, state=data.presence, before=prev[1] if prev else None, until=nxt
        )
    elif prev is not None:
        spans = presence.closed_previous(prev_at=prev[0], prev_state=prev[1], at=at)
    else:
        spans = []
    for slot, ms in spans:
        repository.collect(deltas, Bucket(tenant, slot, agent=agent), [Increment("online_ms", ms)])
