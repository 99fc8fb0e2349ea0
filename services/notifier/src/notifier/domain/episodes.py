"""Delay episodes: one alert per shipment per episode, another only when the estimate worsens enough."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Episode:
    """The current (or last) delay episode of a shipment."""

    number: int = 0
    open: bool = False
    reason: str | None = None
    alerts: int = 0
    alerted_estimate: datetime | None = None


@dataclass(frozen=True)
class Alert:
    """A decision to tell the customer: which episode, why, and the estimate told."""

    shipment_id: str
    episode: int
    sequence: int
    reason: str
    estimate: datetime | None

    @property
    def key(self) -> str:
        """Idempotency key: the same alert computed twice is one notification."""
        return f"{self.shipment_id}:{self.episode}:{self.sequence}"


def on_signal(
    episode: Episode,
    *,
    shipment_id: str,
    reason: str,
    estimate: datetime | None,
    margin: timedelta,
) -> tuple[Episode, Alert | None]:
    """A lateness signal: opens an episode (alert), or re-alerts only on a worse estimate."""
    if not episode.open:
        opened = Episode(episode.number + 1, True, reason, 1, estimate)
        return opened, Alert(shipment_id, opened.number, 1, reason, estimate)
    if not _worse(episode.alerted_estimate, estimate, margin):
        return episode, None
    nxt = replace(episode, alerts=episode.alerts + 1, alerted_estimate=estimate)
    return nxt, Alert(shipment_id, nxt.number, nxt.alerts, "estimate_worsened", estimate)


def _worse(told: datetime | None, new: datetime | None, margin: timedelta) -> bool:
    """Whether the new estimate is later than the one told by at least the margin."""
    if new is None or told is None:
        return False
    return new - told >= margin


def on_recovery(episode: Episode) -> Episode:
    """Back on track (delivered, or an estimate within the promise): the episode ends."""
    return replace(episode, open=False) if episode.open else episode
