"""Rows to domain objects: queue configuration (JSON); agents: `eligibility.Want.agent`."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from routing.domain.calendar import BusinessHours
from routing.domain.queues import Filter, Queue, RelaxStep, SkillNeed, SlaTargets


def hours_from(doc: dict[str, Any] | None) -> BusinessHours | None:
    """A calendar from its JSON form: {tz, weekly: {"0": [["09:00","17:00"]]}, holidays: [...]}."""
    if not doc:
        return None
    weekly = {
        int(day): tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in spans)
        for day, spans in (doc.get("weekly") or {}).items()
    }
    holidays = frozenset(date.fromisoformat(d) for d in doc.get("holidays") or ())
    return BusinessHours(doc.get("tz") or "UTC", weekly, holidays)


def queue_from(row: Any) -> Queue:
    """The domain queue of a row."""
    cfg: dict[str, Any] = row.config
    return Queue(
        id=row.id,
        position=row.position,
        policy=row.policy,
        filters=tuple(
            Filter(**{k: frozenset(v) for k, v in f.items()}) for f in cfg.get("filters") or ()
        ),
        skills=tuple(SkillNeed(s["skill"], s["level"]) for s in cfg.get("skills") or ()),
        relax=tuple(RelaxStep(r["after_s"], r["lower_by"]) for r in cfg.get("relax") or ()),
        sla={p: SlaTargets(**t) for p, t in (cfg.get("sla") or {}).items()},
        hours=hours_from(cfg.get("hours")),
        fallback_queue=cfg.get("fallback_queue"),
        escalate_after_s=cfg.get("escalate_after_s"),
        auto_reply=cfg.get("auto_reply"),
        callback=bool(cfg.get("callback")),
    )
