"""Statements that find and reserve eligible agents, built once per shape of demand.

Building a SQLAlchemy statement with JSON lookups per decision cost more CPU than running it, so
the statements are built once per (policy, queue, language, skills, weight, ...) and reused with
the tenant, the customer's last agent, the one agent offered to and the time as bound values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, bindparam, cast, func, null, or_, select, true, update

from routing.adapters import orm
from routing.adapters.driver import Prepared
from routing.domain.agents import Agent, Presence

CANDIDATES = 20  # best agents fetched per decision (SQL does the filtering, the domain re-checks)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_A = orm.agents.c
_PRESENCE = {p.value: p for p in Presence}
# the columns the domain decides with (`Want.agents`), plus the levels of the skills and the
# language the demand asks about: not the name, memberships, whole skill documents, ...
_DECIDES_WITH = (_A.id, _A.presence, _A.capacity, _A.load, _A.idle_since, _A.last_assigned_at)
# what deciding several cases together needs of each agent read (the SQL filtered the rest)
_SHORTLIST = (_A.id, _A.capacity, _A.load, _A.idle_since, _A.last_assigned_at)
_POLICY_ORDER: dict[str, tuple[Any, ...]] = {
    "longest_idle": (_A.load > 0, func.coalesce(_A.idle_since, _A.last_assigned_at, _EPOCH), _A.id),
    "least_loaded": (
        _A.load * 1.0 / _A.capacity,
        func.coalesce(_A.last_assigned_at, _EPOCH),
        _A.id,
    ),
    "round_robin": (func.coalesce(_A.last_assigned_at, _EPOCH), _A.id),
}


@dataclass(frozen=True)
class Want:
    """What a case needs of an agent, for the SQL pre-filter (the domain re-checks)."""

    weight: int
    policy: str
    queue_id: str | None = None
    language: str | None = None
    skills: tuple[tuple[str, int], ...] = ()
    only: str | None = None
    last: str | None = None  # the customer's last agent: first if eligible

    def params(self, tenant: str, **extra: Any) -> dict[str, Any]:
        """The bound values of this demand's statements."""
        found = {"tenant": tenant} | extra
        if self.only is not None:
            found["only"] = self.only
        if self.last is not None:
            found["last"] = self.last
        return found

    def shape(self) -> Want:
        """This demand without the values that are bound rather than built in."""
        return replace(
            self,
            only="" if self.only is not None else None,
            last="" if self.last is not None else None,
        )

    def agents(self, rows: Iterable[Any]) -> list[Agent]:
        """The domain agents of candidates rows, with the levels of what this demand asks about
        (read by position: the rows start with `_DECIDES_WITH`, then the language's level if
        one is asked for, then the skills' levels)."""
        skills = [skill for skill, _ in self.skills]
        language = self.language
        first_skill = 7 if language is not None else 6  # the row's position of the first skill
        found = []
        for row in rows:
            agent_id, presence, capacity, load, idle_since, last_assigned_at = row[:6]
            agent = Agent(
                agent_id,
                _PRESENCE[presence],
                capacity,
                load,
                dict(zip(skills, row[first_skill:], strict=False)),  # zip stops at the skills
                {language: row[6]} if language is not None else {},
                idle_since,
                last_assigned_at,
            )
            found.append(agent)
        return found


@dataclass(frozen=True)
class Statements:
    """The candidates read and the skip-locked reservation of one demand shape; on PostgreSQL
    also both in one statement (`decide`: the candidates as read before the reservation, each
    row ending with `got`, the agent reserved, or one row of NULLs but `got` if none qualified)."""

    candidates: Any
    reserve: Any
    decide: Any = None
    prepared: Prepared | None = None  # `decide` compiled for the driver connection
    # `decide` without counting the pool (its `pool` column NULL): for a decision whose pool a
    # decision earlier in the same consumer batch counted
    uncounted: Prepared | None = None
    # the best `k` eligible agents (`_SHORTLIST` columns), no lock: what `assign.pick_together`
    # decides several cases of this shape from; with and without the pool count, like `decide`
    shortlist: Prepared | None = None
    shortlist_uncounted: Prepared | None = None


def serves(queue_id: str | None) -> list[Any]:
    """Agents serving a queue (an empty membership serves every queue)."""
    if queue_id is None:
        return []
    return [or_(_A.queue_keys == "", _A.queue_keys.contains(f"|{queue_id}|"))]


@lru_cache(maxsize=4096)
def statements(shape: Want, *, postgres: bool) -> Statements:
    """Statements for a demand shape (see `Want.shape`), with bound tenant/only/last/now."""
    tenant: Any = bindparam("tenant")
    online = [_A.tenant_id == tenant, _A.presence == "online"]
    room = _A.load + shape.weight <= _A.capacity
    fits = [room]  # beyond being online and serving the queue
    levels: list[Any] = []
    if shape.language is not None:
        speaks = func.coalesce(_A.languages[shape.language].as_integer(), 0)
        fits.append(speaks > 0)
        levels.append(speaks.label("speaks"))
    for i, (skill, level) in enumerate(shape.skills):
        has = func.coalesce(_A.skills[skill].as_integer(), 0)
        fits.append(has >= level)
        levels.append(has.label(f"skill{i}"))
    if shape.only is not None:
        fits.append(_A.id == bindparam("only"))
    conds = [*online, *serves(shape.queue_id), *fits]
    order = _POLICY_ORDER[shape.policy]
    limit = CANDIDATES
    if shape.last is not None:
        order = ((_A.id == bindparam("last")).desc(), *order)
        limit += 1
    pool = select(func.count()).select_from(orm.agents).where(*online, *serves(shape.queue_id))

    def candidates_with(pool_column: Any) -> Any:
        return (
            select(*_DECIDES_WITH, *levels, pool_column.label("pool"))
            .where(*conds)
            .order_by(*order)
            .limit(limit)
        )

    candidates = candidates_with(pool.scalar_subquery())
    pick = select(_A.id).where(*conds).order_by(*order).limit(1)
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    take = (
        update(orm.agents)
        .where(*online, room)
        .values(load=_A.load + shape.weight, last_assigned_at=bindparam("now"), idle_since=None)
        .returning(_A.id)
    )
    reserve = take.where(_A.id == pick.scalar_subquery())
    if not postgres:  # no data-modifying CTEs: the two statements one after the other
        return Statements(candidates, reserve)
    decide = _decide(candidates, limit, conds, order, take)
    uncounted = _decide(candidates_with(null()), limit, conds, order, take)

    def shortlist(pool_column: Any) -> Prepared:
        columns = (*_SHORTLIST, pool_column.label("pool"))
        limited = select(*columns).where(*conds).order_by(*order).limit(bindparam("k"))
        return Prepared.of(limited)

    return Statements(
        candidates,
        reserve,
        decide,
        Prepared.of(decide),
        Prepared.of(uncounted),
        shortlist(pool.scalar_subquery()),
        shortlist(cast(null(), BigInteger)),  # typed: the shortlists are read in a UNION
    )


def _decide(
    candidates: Any, limit: int, conds: list[Any], order: tuple[Any, ...], take: Any
) -> Any:
    """Candidates and reservation in one statement, reading the eligible agents once.

    `ranked` is every eligible agent numbered by the policy (one scan, plus the pool count); the
    reservation walks them in that order and locks the first one no other transaction holds (a
    primary-key lookup per agent tried, every condition re-checked on the row's newest version
    under its lock, held rows skipped, no other row locked), then takes its capacity; the first
    `limit` are the candidates. Every part of a statement sees the same snapshot, so the
    candidates are as read before the reservation, which runs whether or not a candidate is
    found (`got`: one row of NULLs but `got` if none qualified).
    """
    ranked = (
        candidates.limit(None)
        .order_by(None)
        .add_columns(func.row_number().over(order_by=order).label("rank"))
        .cte("ranked")
    )
    # ordered in a subquery so the nested loop below runs in rank order and stops at the first
    in_order = select(ranked.c.id, ranked.c.rank).order_by(ranked.c.rank).subquery("r")
    held = (
        select(_A.id)
        .where(_A.id == in_order.c.id, *conds)
        .with_for_update(skip_locked=True)
        .lateral("held")
    )
    pick = select(held.c.id).select_from(in_order.join(held, true()))
    first = pick.order_by(in_order.c.rank).limit(1).scalar_subquery()
    reserved = take.where(_A.id == first).cte("reserved")
    got = select(select(reserved.c.id).scalar_subquery().label("got")).subquery("g")
    best = select(ranked).where(ranked.c.rank <= limit).subquery("c")
    return (
        select(*(c for c in best.c if c.name != "rank"), got.c.got)
        .select_from(got.outerjoin(best, true()))
        .order_by(best.c.rank)
    )
