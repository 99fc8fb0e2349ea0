"""Survey score ranges per kind: CSAT 1-5, NPS 0-10, CES 1-7."""

from __future__ import annotations

from sbcontracts.events.ingest import SurveyKind

SCORE_RANGE: dict[SurveyKind, tuple[int, int]] = {
    SurveyKind.CSAT: (1, 5),
    SurveyKind.NPS: (0, 10),
    SurveyKind.CES: (1, 7),
}


def score_error(kind: SurveyKind, score: int) -> str | None:
    """Why a score is out of range for its kind, or None when valid."""
    low, high = SCORE_RANGE[kind]
    if low <= score <= high:
        return None
    return f"{kind.value} scores are {low}-{high}"
