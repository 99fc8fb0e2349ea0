"""A hypothesis state machine of arrivals, presence changes, replies, resolutions and time passing.

Invariants: one owner per case and owners only on active cases; an agent's load is exactly the units
of the cases they own and never exceeds capacity; no online eligible agent has room while a matching
case waits; after long enough every active case is assigned or escalated to the fallback queue.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from routing.adapters import orm
from routing.bootstrap import bootstrap
from routing.config import RoutingSettings
from routing.entrypoints.consumers import batch_handlers
from routing.entrypoints.worker import fire_due
from routing.service_layer import actions, admin, inbound
from routing.service_layer.context import Ctx
from sbcontracts.events.common import Channel
from sbkit.bus.local import LocalBus
from tests.unit.routing.conftest import TENANT, attributed, settings_for

R = TypeVar("R")
AGENTS = {"pl": {"pl": 5}, "en": {"en": 5}, "both": {"pl": 4, "en": 4}, "ru": {"ru": 5}}
CAPACITY = {"pl": 50, "en": 100, "both": 100, "ru": 50}
ACTIVE = ("new", "open", "pending")


async def _insert_queue(ctx: Ctx, queue_id: str, values: dict[str, Any]) -> None:
    """A queue written straight to the repository (no admin validation or drain)."""
    await ctx.repo.put_queue(queue_id, values, exists=False)


class Routing(RuleBasedStateMachine):
    """Drives the service layer with a virtual clock: on SQLite here; on PostgreSQL, where a
    consumer batch's new cases are decided together, in tests/integration/routing."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
        self.arrived: set[str] = set()  # message ids
        path = Path(tempfile.mkdtemp(prefix="routing-sm-"))
        self.service = bootstrap(self.settings(path), bus=LocalBus(":memory:"), timers=False)
        self.consume_batch = batch_handlers(self.service.knobs, clock=lambda: self.now)["messages"]
        self.run(self.service.runtime.migrate())
        self.run(self._setup())

    def settings(self, path: Path) -> RoutingSettings:
        """The service's settings (its database)."""
        return settings_for(path)

    def run(self, aw: Awaitable[R]) -> R:
        return self.loop.run_until_complete(aw)

    async def ctx(self, use: Callable[[Ctx], Awaitable[R]]) -> R:
        async with self.service.runtime.uow() as uow:
            result = await use(Ctx(uow, TENANT, now=self.now, knobs=self.service.knobs))
            await uow.commit()
            return result

    async def _setup(self) -> None:
        for qid, cfg in (
            ("main", {"fallback_queue": "fallback", "escalate_after_s": 600}),
            ("fallback", {}),
        ):
            values = {
                "name": qid,
                "position": 1 if qid == "main" else 2,
                "policy": "longest_idle",
                "config": cfg,
            }
            await self.ctx(partial(_insert_queue, queue_id=qid, values=values))
        for aid, langs in AGENTS.items():
            profile = {
                "name": aid,
                "capacity": CAPACITY[aid],
                "skills": {},
                "languages": langs,
                "queues": [],
            }
            await self.ctx(partial(admin.put_agent, agent_id=aid, values=profile, create=True))

    def teardown(self) -> None:
        self.run(self.service.runtime.stop())
        self.loop.close()

    async def rows(self) -> tuple[list[Any], list[Any]]:
        async with self.service.runtime.uow() as uow:
            tickets = list((await uow.session.execute(select(orm.tickets))).all())
            agents = list((await uow.session.execute(select(orm.agents))).all())
        return tickets, agents

    @rule(
        customer=st.integers(0, 5),
        language=st.sampled_from(["pl", "en", "ru"]),
        channel=st.sampled_from([Channel.EMAIL, Channel.WEBCHAT, Channel.VOICE]),
    )
    def arrive(self, customer: int, language: str, channel: Channel) -> None:
        event = attributed(
            "Where is my parcel?",
            customer=f"c{customer}",
            channel=channel,
            at=self.now,
            language=language,
        )
        self.arrived.add(event.data.message.message_id)
        self.run(self.ctx(lambda c: inbound.on_message(c, event.data)))

    @rule(
        customers=st.lists(st.integers(0, 5), min_size=2, max_size=4),
        language=st.sampled_from(["pl", "en", "ru"]),
        channel=st.sampled_from([Channel.EMAIL, Channel.WEBCHAT, Channel.VOICE]),
    )
    def arrive_in_one_batch(self, customers: list[int], language: str, channel: Channel) -> None:
        """Several messages applied in one transaction by the consumer's batch handler (on the
        virtual clock): on PostgreSQL the new cases are decided together at the end."""
        events = [
            attributed(
                "Gdzie paczka?", customer=f"c{c}", channel=channel, at=self.now, language=language
            )
            for c in customers
        ]
        self.arrived.update(e.data.message.message_id for e in events)

        async def batch() -> None:
            async with self.service.runtime.uow() as uow:
                await self.consume_batch(uow, events)
                await uow.commit()

        self.run(batch())

    @rule(
        agent=st.sampled_from(sorted(AGENTS)),
        presence=st.sampled_from(["online", "away", "offline"]),
    )
    def presence(self, agent: str, presence: str) -> None:
        self.run(self.ctx(lambda c: admin.set_presence(c, agent, presence)))

    @rule(pick=st.integers(0, 100), pending=st.booleans())
    def reply(self, pick: int, pending: bool) -> None:
        owned = [t for t in self.run(self.rows())[0] if t.agent_id and t.status in ("new", "open")]
        if owned:
            t = owned[pick % len(owned)]
            status = "pending" if pending else "open"
            self.run(
                self.ctx(
                    lambda c: actions.reply(c, t.id, agent_id=t.agent_id, text="ok", status=status)
                )
            )

    @rule(pick=st.integers(0, 100))
    def resolve(self, pick: int) -> None:
        active = [t for t in self.run(self.rows())[0] if t.status in ACTIVE]
        if active:
            self.run(self.ctx(lambda c: actions.resolve(c, active[pick % len(active)].id)))

    @rule(minutes=st.integers(1, 30))
    def tick(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self.run(fire_due(self.service.runtime, self.service.knobs, now=self.now))

    @rule()
    def long_wait_ends_assigned_or_escalated(self) -> None:
        self.now += timedelta(days=1)
        self.run(fire_due(self.service.runtime, self.service.knobs, now=self.now))
        tickets, _ = self.run(self.rows())
        stuck = [
            t.id
            for t in tickets
            if t.status in ACTIVE and not t.agent_id and t.queue_id != "fallback"
        ]
        assert not stuck, f"waiting forever: {stuck}"

    @invariant()
    def every_message_is_on_a_case(self) -> None:
        async def stored() -> set[str]:
            async with self.service.runtime.uow() as uow:
                q = select(orm.ticket_messages.c.message_id)
                return set((await uow.session.execute(q)).scalars())

        missing = self.arrived - self.run(stored())
        assert not missing, f"messages on no case: {sorted(missing)}"

    @invariant()
    def owners_and_capacity(self) -> None:
        tickets, agents = self.run(self.rows())
        for t in tickets:
            assert t.agent_id is None or t.status in ACTIVE, f"{t.status} case {t.id} still owned"
        for a in agents:
            units = sum(t.weight for t in tickets if t.agent_id == a.id)
            assert a.load == units <= a.capacity, (a.id, a.load, units, a.capacity)

    @invariant()
    def no_idle_eligible_agent_while_a_match_waits(self) -> None:
        tickets, agents = self.run(self.rows())
        for t in tickets:
            if t.status not in ACTIVE or t.agent_id:
                continue
            idle = [
                a.id
                for a in agents
                if a.presence == "online"
                and a.load + t.weight <= a.capacity
                and a.languages.get(t.language, 0) > 0
            ]
            assert not idle, (
                f"case {t.id} ({t.language}, {t.weight}) waits while {idle} could take it"
            )


Routing.TestCase.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)
TestRouting = Routing.TestCase
