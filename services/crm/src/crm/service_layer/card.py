"""The customer card, the timeline pages, search and export: what an agent needs at a glance."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from crm.adapters.card_read import read_card
from crm.adapters.queries import CustomerQueries
from crm.domain.handles import HandleKey, InvalidHandle
from crm.service_layer.context import Ctx
from crm.service_layer.errors import CustomerNotFound, InvalidField

CLOSED = ("resolved", "closed")
PROFILE_FIELDS = ("name", "language", "timezone", "preferred_channel", "tier")


def _aware(ts: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _attributes(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per field: the current (latest) value with its provenance, and every other value kept."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:  # oldest first, so the last one written wins
        entry = {
            "value": r["value"],
            "source": r["source"],
            "source_ref": r["source_ref"],
            "recorded_at": _aware(r["recorded_at"]),
        }
        previous = out.get(r["field"])
        others = [*previous["alternatives"], _strip(previous)] if previous else []
        out[r["field"]] = {**entry, "alternatives": others}
    return out


def _strip(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "alternatives"}


def _consents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest decision per channel and purpose."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        latest[(r["channel"], r["purpose"])] = {
            "channel": r["channel"],
            "purpose": r["purpose"],
            "granted": r["granted"],
            "source": r["source"],
            "recorded_at": _aware(r["recorded_at"]),
        }
    return list(latest.values())


async def live_row(ctx: Ctx, customer_id: str) -> Any:
    """The live customer row an id resolves to (merged-away ids resolve to the survivor)."""
    row = await ctx.repo.live(customer_id)
    if row is None:
        raise CustomerNotFound(f"no customer {customer_id}")
    return row


async def card(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """The card of a customer (of the survivor when the id was merged away), in one query."""
    parts = await read_card(ctx.uow.session, ctx.tenant, customer_id)
    if not parts:
        raise CustomerNotFound(f"no customer {customer_id}")
    row = parts["customer"][0]
    attrs = _attributes(parts["attributes"])
    tickets = parts["tickets"]
    shipments: dict[str, list[dict[str, Any]]] = {}
    for s in parts["shipments"]:
        shipments.setdefault(s["order_id"], []).append(s)
    created = _aware(row["created_at"])
    return {
        "id": row["id"],
        "requested_id": customer_id,
        "merged_ids": [m["id"] for m in parts["merged"]],
        "identities": [_identity(i) for i in parts["identities"]],
        "attributes": attrs,
        **{f: attrs[f]["value"] if f in attrs else None for f in PROFILE_FIELDS},
        "consents": _consents(parts["consents"]),
        "created_at": created,
        "tenure_days": (ctx.now - created).days,
        "orders": [
            _order({**o, "shipments": shipments.get(o["order_id"], [])}) for o in parts["orders"]
        ],
        "open_tickets": [_ticket(t) for t in tickets if t["status"] not in CLOSED],
        "last_contact": _last_contact(next(iter(parts["last_message"]), None), tickets),
    }


def _identity(i: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": i["kind"],
        "value": i["value"],
        "scope": i["scope"] or None,
        "source": i["source"],
        "source_ref": i["source_ref"],
        "linked_at": _aware(i["created_at"]),
    }


def _order(o: dict[str, Any]) -> dict[str, Any]:
    ships = sorted(o["shipments"], key=lambda s: _aware(s["occurred_at"]), reverse=True)
    return {
        "order_id": o["order_id"],
        "status": o["status"],
        "placed_at": _aware(o["placed_at"]),
        "currency": o["currency"],
        "total_minor": o["total_minor"],
        "shipments": [
            {
                "shipment_id": s["shipment_id"],
                "carrier": s["carrier"],
                "status": s["status"],
                "at": _aware(s["occurred_at"]),
            }
            for s in ships
        ],
        "latest_shipment_status": ships[0]["status"] if ships else None,
    }


def _ticket(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "ticket_id": t["ticket_id"],
        "status": t["status"],
        "category": t["category"],
        "subject": t["subject"],
        "channel": t["channel"],
        "order_id": t["order_id"],
        "opened_at": _aware(t["opened_at"]),
        "updated_at": _aware(t["updated_at"]),
    }


def _last_contact(
    last: dict[str, Any] | None, tickets: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The latest message and the reason (category) of the most recent case."""
    if last is None:
        return None
    reason = next((t["category"] for t in tickets if t["category"]), None)
    return {
        "at": _aware(last["occurred_at"]),
        "channel": last["channel"],
        "summary": last["summary"],
        "reason": reason,
    }


def encode_cursor(at: datetime, row_id: int) -> str:
    """An opaque cursor for the entry after which the next page starts."""
    return base64.urlsafe_b64encode(f"{_aware(at).isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position a cursor stands for, or a 422 naming the field."""
    try:
        at, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(at), int(row_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidField("invalid cursor", field="cursor") from exc


async def timeline(ctx: Ctx, customer_id: str, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of the customer's timeline, newest first, and the cursor of the next page."""
    row = await live_row(ctx, customer_id)
    before = decode_cursor(cursor) if cursor else None
    q = CustomerQueries(ctx.uow.session, ctx.tenant)
    rows = await q.timeline(row.id, before=before, limit=limit + 1)
    page = rows[:limit]
    entries = [
        {
            "kind": r["kind"],
            "ref": r["ref"],
            "occurred_at": _aware(r["occurred_at"]),
            "channel": r["channel"],
            "summary": r["summary"],
        }
        for r in page
    ]
    nxt = encode_cursor(page[-1]["occurred_at"], page[-1]["id"]) if len(rows) > limit else None
    return {"customer_id": row.id, "entries": entries, "next_cursor": nxt}


async def search(
    ctx: Ctx, *, handles: list[HandleKey], text: str | None, limit: int
) -> list[dict[str, Any]]:
    """Live customers holding any of the handles or whose name contains the text."""
    q = CustomerQueries(ctx.uow.session, ctx.tenant)
    ids = await q.owners(handles)
    if text:
        ids += await q.by_name(text, limit)
    found: dict[str, dict[str, Any]] = {}
    for cid in ids:
        row = await ctx.repo.live(cid)
        if row is not None and row.id not in found and len(found) < limit:
            attrs = _attributes(await q.attributes(row.id))
            found[row.id] = {
                "id": row.id,
                "name": attrs["name"]["value"] if "name" in attrs else None,
                "identities": [_identity(i) for i in await q.identities(row.id)],
            }
    return list(found.values())


def invalid(exc: InvalidHandle) -> InvalidField:
    """The 422 of a handle that cannot be normalised, naming the field."""
    return InvalidField(str(exc), field=exc.field, errors=[{"loc": ["body", exc.field]}])
