"""The tenant's classifier: its own rules if it edited them, else the built-in multilingual rules."""

from __future__ import annotations

from functools import lru_cache

from routing.domain.classify import Classifier, RuleClassifier
from routing.domain.rules import Rule
from routing.service_layer.context import Ctx


@lru_cache(maxsize=256)
def _compiled(rules: tuple[Rule, ...]) -> RuleClassifier:
    return RuleClassifier(rules or None)


async def classifier_for(ctx: Ctx) -> Classifier:
    """A classifier for the context's tenant (compiled rule sets are cached by content)."""
    rows = await ctx.repo.rules()
    return _compiled(tuple(Rule(r.category, r.pattern, r.language, r.weight) for r in rows))
