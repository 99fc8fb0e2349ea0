"""Message templates per language: order id, new estimate and tracking link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from string import Template


@dataclass(frozen=True)
class MessageTemplate:
    """A template in one language; `$order_id`, `$estimate`, `$tracking_url` are filled in."""

    language: str
    subject: str
    body: str


DEFAULTS: dict[str, MessageTemplate] = {
    "en": MessageTemplate(
        "en",
        "Your order $order_id is delayed",
        "Your order $order_id is running late. New estimate: $estimate. Track it: $tracking_url",
    ),
    "pl": MessageTemplate(
        "pl",
        "Twoje zamówienie $order_id jest opóźnione",
        "Przesyłka z zamówienia $order_id jest opóźniona. Nowy termin: $estimate. "
        "Śledzenie: $tracking_url",
    ),
    "ru": MessageTemplate(
        "ru",
        "Ваш заказ $order_id задерживается",
        "Доставка заказа $order_id задерживается. Новый срок: $estimate. "
        "Отслеживание: $tracking_url",
    ),
    "ro": MessageTemplate(
        "ro",
        "Comanda ta $order_id întârzie",
        "Livrarea comenzii $order_id întârzie. Estimare nouă: $estimate. Urmărire: $tracking_url",
    ),
}
UNKNOWN_ESTIMATE = {
    "en": "to be confirmed",
    "pl": "wkrótce podamy",
    "ru": "уточняется",
    "ro": "urmează",
}


def pick(
    language: str | None, custom: dict[str, MessageTemplate], fallback: str
) -> MessageTemplate:
    """The tenant's template in the customer's language, else the built-in one, else the fallback."""
    for lang in (language, fallback, "en"):
        if lang and lang in custom:
            return custom[lang]
        if lang and lang in DEFAULTS:
            return DEFAULTS[lang]
    return DEFAULTS["en"]


def render(
    template: MessageTemplate, *, order_id: str, estimate: datetime | None, tracking_url: str
) -> tuple[str, str]:
    """Subject and body with the placeholders filled (unknown placeholders stay as written)."""
    told = estimate.date().isoformat() if estimate else UNKNOWN_ESTIMATE.get(template.language, "-")
    values = {"order_id": order_id, "estimate": told, "tracking_url": tracking_url}
    return (
        Template(template.subject).safe_substitute(values),
        Template(template.body).safe_substitute(values),
    )
