"""Who a customer id is now: crm's merges not undone lead a merged-away id to its survivor (chains
too), and the advisory locks of the customers derived entities are grouped under."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters import facts, merges
from analytics.adapters.merges import Merge


class Resolver:
    """Resolves customer ids through the stored merges, with one merge assumed added or undone
    (to know, before locking, whom a merge or an undo will touch); memoised per instance."""

    def __init__(
        self, session: AsyncSession, tenant: str, *, add: Merge | None = None, drop: str = ""
    ) -> None:
        self.session, self.tenant, self.add, self.drop = session, tenant, add, drop
        self._next: dict[str, str | None] = {}

    async def prefetch(self, customers: Iterable[str]) -> None:
        """Look up the first step of many ids in one query."""
        todo = set(customers) - set(self._next)
        if not todo:
            return
        found = await merges.active_from(self.session, self.tenant, todo)
        for customer in todo:
            edges = [m for m in found.get(customer, []) if m.merge_id != self.drop]
            if self.add is not None and self.add.merged == customer:
                edges.append(self.add)
            # two live merges of one id only while crm's events are still arriving out of
            # order: the latest stands, so every arrival order settles on the same answer
            latest = max(edges, key=lambda m: (m.at, m.merge_id), default=None)
            self._next[customer] = latest.survivor if latest else None

    async def _step(self, customer: str) -> str | None:
        await self.prefetch([customer])
        return self._next[customer]

    async def root(self, customer: str) -> str:
        """The survivor `customer` resolves to (itself when not merged away)."""
        path = [customer]
        while (nxt := await self._step(path[-1])) is not None:
            if nxt in path:  # a cycle, only transient (out of order): one root for all its ids
                return min(path[path.index(nxt) :])
            path.append(nxt)
        return path[-1]

    async def roots(self, customers: Iterable[str]) -> list[str]:
        """`root` of each."""
        customers = list(customers)
        await self.prefetch(customers)
        return [await self.root(c) for c in customers]


@dataclass
class _Txn:
    """What one transaction knows: the customer locks it holds (released at its end), a resolver
    per tenant (its look-ups stay true while the roots they reach are locked) and the origins of
    the entities its events touch (`derive.prelock`)."""

    held: set[tuple[str, str]] = field(default_factory=set)
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)


def txn(session: AsyncSession) -> _Txn:
    """The state of the session's current transaction."""
    current = session.get_transaction()
    mark, state = session.info.get("analytics_txn", (None, None))
    if mark is not current or state is None:
        state = _Txn()
        session.info["analytics_txn"] = (current, state)
    return state


def resolver(session: AsyncSession, tenant: str) -> Resolver:
    """The transaction's resolver of a tenant."""
    resolvers = txn(session).resolvers
    if tenant not in resolvers:
        resolvers[tenant] = Resolver(session, tenant)
    return resolvers[tenant]


def forget(session: AsyncSession, tenant: str) -> None:
    """Drop the tenant's look-ups (after locking more, or changing the merges)."""
    txn(session).resolvers.pop(tenant, None)


async def lock(session: AsyncSession, tenant: str, customers: Iterable[str]) -> None:
    """Take the customers' locks in one fixed order (by id), so two writers never deadlock; a
    transaction takes all it can foresee at once, before any other (`derive.prelock`)."""
    held = txn(session).held
    for customer in sorted(set(customers)):
        if (tenant, customer) not in held:
            await facts.lock(session, tenant, "customer", customer)
            held.add((tenant, customer))


async def lock_roots(
    session: AsyncSession, tenant: str, customers: Iterable[str], *, also: Iterable[str] = ()
) -> list[str]:
    """Lock the customers these ids resolve to (and `also`), then resolve again until no merge
    committed in between has moved one: the roots, stable until commit (a merge changing them
    must take one of these locks). Roots whose locks were held already need no second look."""
    customers, held = list(customers), txn(session).held
    roots = await resolver(session, tenant).roots(customers)
    want = set(roots) | set(also)
    while not all((tenant, c) in held for c in want):
        await lock(session, tenant, want)  # past the first time out of order: rare, retried
        forget(session, tenant)
        roots = await resolver(session, tenant).roots(customers)
        want = set(roots) | set(also)
    return roots
