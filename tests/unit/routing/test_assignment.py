"""Queue matching, agent eligibility, assignment policies, skill relaxation, backlog order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

from routing.domain.agents import Agent, Demand, Policy, Presence, Waiting, backlog_order, choose
from routing.domain.classify import RuleClassifier
from routing.domain.queues import CaseFacts, Filter, Queue, RelaxStep, SkillNeed, match_queue
from routing.service_layer.snapshot import Config

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PL = {"pl": 5}


class AgentFields(TypedDict, total=False):
    load: int
    skills: dict[str, int]
    languages: dict[str, int]
    idle_since: datetime | None
    last_assigned_at: datetime | None


def online(aid: str, **kw: Unpack[AgentFields]) -> Agent:
    fields: AgentFields = {"languages": PL, **kw}
    return Agent(aid, Presence.ONLINE, **fields)


def id_of(queue: Queue | None) -> str | None:
    return queue.id if queue else None


def test_first_matching_queue_by_position_wins_and_catch_all_comes_last() -> None:
    pl_delay = Queue("pl-delivery", 1, (Filter(frozenset({"delivery_delay"}), frozenset({"pl"})),))
    vip = Queue("vip", 0, (Filter(tiers=frozenset({"gold"})),))
    general = Queue("general", 9)
    queues = [general, pl_delay, vip]
    assert id_of(match_queue(queues, CaseFacts("delivery_delay", "pl", "email"))) == "pl-delivery"
    assert id_of(match_queue(queues, CaseFacts("delivery_delay", "pl", "email", "gold"))) == "vip"
    assert id_of(match_queue(queues, CaseFacts("billing", "en", "email"))) == "general"


def test_a_config_snapshot_matches_like_match_queue_and_remembers_the_answer() -> None:
    pl_delay = Queue("pl-delivery", 1, (Filter(frozenset({"delivery_delay"}), frozenset({"pl"})),))
    only_pl = Queue("only-pl", 2, (Filter(languages=frozenset({"pl"})),))
    cfg = Config(1, (only_pl, pl_delay), RuleClassifier())
    for facts in (CaseFacts("delivery_delay", "pl", "email"), CaseFacts("billing", "en", "sms")):
        expected = match_queue(cfg.queues, facts)
        assert cfg.match(facts) == expected
        assert cfg.match(facts) == expected  # the remembered answer
    assert id_of(cfg.match(CaseFacts("delivery_delay", "pl", "email"))) == "pl-delivery"
    assert cfg.match(CaseFacts("billing", "en", "sms")) is None  # no catch-all


def test_skills_relax_step_by_step_as_the_case_waits() -> None:
    queue = Queue(
        "q", skills=(SkillNeed("billing", 4),), relax=(RelaxStep(60, 2), RelaxStep(300, 2))
    )
    assert queue.needs_at(0) == (SkillNeed("billing", 4),)
    assert queue.needs_at(61) == (SkillNeed("billing", 2),)
    assert queue.needs_at(301) == ()


def test_ineligible_agents_are_skipped_offline_full_wrong_language_or_skill() -> None:
    demand = Demand("t1", "webchat", "pl", (SkillNeed("billing", 3),))
    agents = [
        Agent("off", Presence.OFFLINE, skills={"billing": 5}, languages=PL),
        online("full", skills={"billing": 5}, load=80),
        online("ru", skills={"billing": 5}, languages={"ru": 5}),
        online("junior", skills={"billing": 2}),
        online("ok", skills={"billing": 3}),
    ]
    decision = choose(agents, demand, policy=Policy.LONGEST_IDLE)
    assert (decision.agent_id, decision.eligible, decision.considered) == ("ok", ("ok",), 5)


def test_a_call_blocks_more_capacity_than_a_chat_and_a_chat_more_than_an_email() -> None:
    agent = online("a", load=60)
    assert choose([agent], Demand("e", "email", "pl"), policy=Policy.LEAST_LOADED).agent_id == "a"
    assert choose([agent], Demand("c", "webchat", "pl"), policy=Policy.LEAST_LOADED).agent_id == "a"
    assert choose([agent], Demand("v", "voice", "pl"), policy=Policy.LEAST_LOADED).agent_id is None


def test_policies_pick_longest_idle_least_loaded_and_round_robin() -> None:
    a = online("a", load=10, idle_since=None, last_assigned_at=T0)
    b = online(
        "b", load=0, idle_since=T0 + timedelta(minutes=5), last_assigned_at=T0 - timedelta(hours=1)
    )
    c = online(
        "c",
        load=0,
        idle_since=T0 + timedelta(minutes=1),
        last_assigned_at=T0 + timedelta(minutes=1),
    )
    demand = Demand("t", "email", "pl")
    assert choose([a, b, c], demand, policy=Policy.LONGEST_IDLE).agent_id == "c"
    assert choose([a, b, c], demand, policy=Policy.ROUND_ROBIN).agent_id == "b"
    assert (
        choose(
            [online("x", load=50), online("y", load=20)], demand, policy=Policy.LEAST_LOADED
        ).agent_id
        == "y"
    )


def test_customers_last_agent_is_preferred_when_online_and_eligible() -> None:
    demand = Demand("t", "email", "pl", last_agent_id="b")
    decision = choose([online("a"), online("b", load=50)], demand, policy=Policy.LEAST_LOADED)
    assert (decision.agent_id, decision.reason) == ("b", "customer's last agent")
    offline_last = choose(
        [online("a"), Agent("b", languages=PL)], demand, policy=Policy.LEAST_LOADED
    )
    assert offline_last.agent_id == "a"


def test_backlog_drains_highest_priority_then_oldest() -> None:
    cases = [
        Waiting("old-normal", "normal", T0),
        Waiting("new-urgent", "urgent", T0 + timedelta(hours=2)),
        Waiting("old-urgent", "urgent", T0 + timedelta(hours=1)),
    ]
    assert [c.case_id for c in backlog_order(cases)] == ["old-urgent", "new-urgent", "old-normal"]
