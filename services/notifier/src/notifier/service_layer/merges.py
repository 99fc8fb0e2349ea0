"""crm merges in the customer read model: the merged-away customer's handles, cases, opt-outs and
preferences move to the survivor; an undo gives both back what they had.

Opt-outs are the union (a STOP from either person keeps holding). An opt-out recorded while the
two were one customer cannot be told apart, so after an undo it holds for both; a START while
merged does not lift an opt-out a person had before the merge (they can send START again).
A preference changed after the merge is kept by the survivor; one the merge filled in is undone.
"""

from __future__ import annotations

from typing import Any

from notifier.domain.policy import Customer
from notifier.service_layer.context import Ctx
from sbcontracts.events import crm

PREFERENCES = ("language", "timezone", "preferred_channel")


def _state(c: Customer) -> dict[str, Any]:
    return {k: getattr(c, k) for k in PREFERENCES} | {"opted_out": sorted(c.opted_out)}


async def on_merged(ctx: Ctx, data: crm.CustomerMerged) -> None:
    """Move the merged-away customer's handles, cases, opt-outs and missing preferences."""
    repo = ctx.repo
    if await repo.merge(data.merge_id):
        return
    survivor = await repo.customer(data.survivor_id) or Customer(data.survivor_id)
    merged = await repo.customer(data.merged_id) or Customer(data.merged_id)
    handles = await repo.handles_of(data.merged_id)
    after = {k: getattr(survivor, k) or getattr(merged, k) for k in PREFERENCES}
    after["opted_out"] = sorted(survivor.opted_out | merged.opted_out)
    await repo.put_customer(data.survivor_id, **after)
    await repo.move_handles(data.merged_id, data.survivor_id)
    cases = await repo.move_cases(data.merged_id, data.survivor_id)
    before = {
        "survivor": _state(survivor),
        "merged": _state(merged),
        "after": after,
        "handles": [list(h) for h in handles],
        "cases": cases,
    }
    await repo.put_merge(
        data.merge_id, survivor_id=data.survivor_id, merged_id=data.merged_id,
        before=before, undone=False,
    )  # fmt: skip


async def on_unmerged(ctx: Ctx, data: crm.CustomerUnmerged) -> None:
    """Give the restored customer its handles, cases and opt-outs back; undo what the merge filled."""
    repo = ctx.repo
    row = await repo.merge(data.merge_id)
    handles = [(h.kind.value, h.value) for h in data.moved_back]
    if row is None or row.undone:
        for kind, value in handles:  # a merge this read model never saw: crm's word only
            await repo.link(kind, value, data.restored_id)
        return
    was = row.before
    survivor = await repo.customer(data.survivor_id) or Customer(data.survivor_id)
    added = survivor.opted_out - set(was["after"]["opted_out"])  # STOPs while merged
    now = _state(survivor)
    restored = {k: was["survivor"][k] if now[k] == was["after"][k] else now[k] for k in PREFERENCES}
    restored["opted_out"] = sorted(set(was["survivor"]["opted_out"]) | added)
    await repo.put_customer(data.survivor_id, **restored)
    merged = await repo.customer(data.restored_id) or Customer(data.restored_id)
    await repo.put_customer(data.restored_id, opted_out=sorted(merged.opted_out | added))
    for kind, value in handles or [tuple(h) for h in was["handles"]]:
        await repo.link(kind, value, data.restored_id)
    await repo.move_cases(data.survivor_id, data.restored_id, ticket_ids=was["cases"])
    await repo.put_merge(
        data.merge_id, survivor_id=row.survivor_id, merged_id=row.merged_id, before=was, undone=True
    )
