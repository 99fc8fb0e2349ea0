"""A tenant's queues and classification rules, cached per process and checked once per transaction.

Every change of a tenant's queues or rules bumps its row in `config_versions` in the same
transaction. A unit of work reads that version once (a consumer batch is one unit of work) and
uses the process's snapshot when it has the same version, so a decision costs no queue or rule
reads, and a change made by any replica is seen by the next transaction everywhere. A
transaction that changed the configuration itself reads it from the database and never caches
what it cannot be sure will commit.
"""

from __future__ import annotations

from functools import lru_cache

from routing.adapters.mapping import queue_from
from routing.adapters.repository import CONFIG_MEMO
from routing.domain.classify import RuleClassifier
from routing.domain.rules import Rule
from routing.service_layer.context import Ctx
from routing.service_layer.snapshot import Config


@lru_cache(maxsize=256)
def _compiled(rules: tuple[Rule, ...]) -> RuleClassifier:
    return RuleClassifier(rules or None)


async def config(ctx: Ctx) -> Config:
    """The tenant's configuration for this transaction (one version read per transaction)."""
    memo: dict[str, Config] = ctx.uow.session.info.setdefault(CONFIG_MEMO, {})
    if ctx.tenant in memo:
        return memo[ctx.tenant]
    version = await ctx.repo.config_version()
    changed_here = ctx.repo.config_changed
    found = None if changed_here else ctx.knobs.cache.get(ctx.tenant, version)
    if found is None:
        found = await _load(ctx, version)
        if not changed_here:
            ctx.knobs.cache.put(ctx.tenant, found)
    memo[ctx.tenant] = found
    return found


async def _load(ctx: Ctx, version: int) -> Config:
    queues = tuple(
        sorted((queue_from(r) for r in await ctx.repo.queues()), key=lambda q: (q.position, q.id))
    )
    rules = tuple(Rule(r.category, r.pattern, r.language, r.weight) for r in await ctx.repo.rules())
    return Config(version, queues, _compiled(rules), {q.id: q for q in queues})
