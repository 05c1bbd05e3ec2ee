"""Period windows: a `billing_window_id` shaped `YYYY-MM` is a UTC calendar month, one shaped
`YYYY-MM-DD` a UTC day; an event's timestamp must lie inside its period window. Any other id is
opaque (a name, as in the pilot) and is never checked or closed by the calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from vbill.encode.encoding import encode_timestamp
from vbill.errors import InputError

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FIELD = "meter_event.billing_window_id"


@dataclass(frozen=True)
class Period:
    """A period window's UTC span [start_ms, end_ms) in milliseconds since the epoch."""

    window_id: str
    start_ms: int
    end_ms: int

    @property
    def start(self) -> str:
        return _rfc3339(self.start_ms)

    @property
    def end(self) -> str:
        return _rfc3339(self.end_ms)


def _ms(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000


def _rfc3339(ms: int) -> str:
    moment = _EPOCH + dt.timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def period_of(window_id: str) -> Period | None:
    """The period a window id names, None for an opaque id; InputError for an id shaped like
    a period that is no calendar date (`2026-13`, `2026-02-30`)."""
    if not isinstance(window_id, str):
        return None
    month, day = _MONTH.fullmatch(window_id), _DAY.fullmatch(window_id)
    if month is None and day is None:
        return None
    try:
        if month is not None:
            year, mon = int(month[1]), int(month[2])
            start = dt.datetime(year, mon, 1, tzinfo=dt.UTC)
            end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=dt.UTC)
        else:
            assert day is not None
            start = dt.datetime(int(day[1]), int(day[2]), int(day[3]), tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1)
    except (ValueError, OverflowError):
        raise InputError(
            FIELD,
            f"{window_id!r} is shaped like a period (YYYY-MM or YYYY-MM-DD) but is no "
            "calendar month or day",
        ) from None
    if start.year < 1970:
        raise InputError(FIELD, f"{window_id!r} is before 1970")
    return Period(window_id, _ms(start), _ms(end))


def check_event_period(meter_event: object) -> None:
    """Refuse an event whose period window (YYYY-MM, YYYY-MM-DD) does not contain its
    timestamp (InputError naming `meter_event.billing_window_id`); opaque ids pass."""
    if not isinstance(meter_event, dict):
        return
    period = period_of(meter_event.get("billing_window_id"))  # type: ignore[arg-type]
    if period is None:
        return
    at = encode_timestamp(meter_event.get("event_timestamp"), "meter_event.event_timestamp")
    if not period.start_ms <= at < period.end_ms:
        raise InputError(
            FIELD,
            f"period window {period.window_id!r} runs from {period.start} to {period.end} "
            f"(UTC), but event_timestamp {meter_event.get('event_timestamp')} is outside it",
        )
