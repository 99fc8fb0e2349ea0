"""Carrier tracking codes mapped to the one shipment status model, with delay detection."""

from __future__ import annotations

from dataclasses import dataclass

from sbcontracts.events.ingest import ShipmentStatus as S

# Per-carrier event codes (from the carriers' public tracking docs; X12 = EDI 214 status codes).
_CODES: dict[str, dict[str, S]] = {
    "ups": {
        "M": S.PRE_TRANSIT,
        "MV": S.PRE_TRANSIT,
        "P": S.IN_TRANSIT,
        "I": S.IN_TRANSIT,
        "AR": S.IN_TRANSIT,
        "DP": S.IN_TRANSIT,
        "OT": S.OUT_FOR_DELIVERY,
        "D": S.DELIVERED,
        "X": S.EXCEPTION,
        "RS": S.RETURNING,
        "ZP": S.AVAILABLE_FOR_PICKUP,
        "NA": S.ATTEMPT_FAILED,
    },
    "fedex": {
        "OC": S.PRE_TRANSIT,
        "PU": S.IN_TRANSIT,
        "IT": S.IN_TRANSIT,
        "AR": S.IN_TRANSIT,
        "DP": S.IN_TRANSIT,
        "OD": S.OUT_FOR_DELIVERY,
        "DL": S.DELIVERED,
        "DE": S.EXCEPTION,
        "CA": S.CANCELLED,
        "RS": S.RETURNING,
        "HL": S.AVAILABLE_FOR_PICKUP,
    },
    "dhl": {
        "PU": S.IN_TRANSIT,
        "PL": S.IN_TRANSIT,
        "AF": S.IN_TRANSIT,
        "DF": S.IN_TRANSIT,
        "AR": S.IN_TRANSIT,
        "WC": S.OUT_FOR_DELIVERY,
        "OK": S.DELIVERED,
        "NH": S.ATTEMPT_FAILED,
        "CA": S.ATTEMPT_FAILED,
        "BA": S.EXCEPTION,
        "RT": S.RETURNING,
        "SA": S.AVAILABLE_FOR_PICKUP,
    },
    "x12": {
        "X3": S.IN_TRANSIT,
        "AF": S.IN_TRANSIT,
        "X1": S.IN_TRANSIT,
        "X6": S.IN_TRANSIT,
        "OO": S.OUT_FOR_DELIVERY,
        "D1": S.DELIVERED,
        "AP": S.ATTEMPT_FAILED,
        "A3": S.RETURNED,
        "CA": S.CANCELLED,
        "A7": S.EXCEPTION,
    },
}

# Delay codes (shared reference "Shipment tracking"); value = reason.
_DELAYS: dict[str, dict[str, str]] = {
    "ups": {"DY": "carrier", "DE": "carrier", "SD": "carrier"},
    "fedex": {"DY": "carrier", "DD": "carrier", "PY": "carrier"},
    "dhl": {
        "AD": "carrier",
        "DY": "carrier",
        "HI": "customs",
        "HO": "carrier",
        "HW": "weather",
        "RD": "carrier",
        "SM": "carrier",
        "WX": "weather",
    },
    "x12": {"AW": "dispatch", "AY": "carrier", "AO": "weather"},
}


@dataclass(frozen=True)
class TrackingStatus:
    """A carrier code in our model: status, delay flag and reason."""

    status: S
    is_delay: bool = False
    reason: str | None = None


def map_carrier_code(carrier: str, code: str | None) -> TrackingStatus:
    """Our status of a carrier's code; delay codes keep the parcel in transit, flagged late."""
    carrier_key = carrier.strip().lower()
    key = (code or "").strip().upper()
    reason = _DELAYS.get(carrier_key, {}).get(key)
    if reason:
        return TrackingStatus(S.IN_TRANSIT, is_delay=True, reason=reason)
    status = _CODES.get(carrier_key, {}).get(key)
    if status:
        return TrackingStatus(status)
    try:
        return TrackingStatus(S(key.lower()))  # already in our vocabulary
    except ValueError:
        return TrackingStatus(S.UNKNOWN)
