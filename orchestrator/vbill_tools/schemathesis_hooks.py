"""schemathesis hooks (loaded by schemathesis.toml): the service's rules that JSON Schema cannot
state, recognised one by one so that nothing else is excused.

The OpenAPI document states every rule it can (lengths, patterns, enumerations, bounds, tier
shapes). What remains relates two values, or a value's spelling, which no JSON Schema keyword
expresses; each such rule is stated in words in the document (the field's or the operation's
description) and docs/http-api.md, and the service refuses a request that breaks it with a 422
naming the field:

- `min_charge_micros ≤ max_charge_micros` (tariff_snapshot);
- each tier's `up_to` above the previous tier's (tariff_snapshot.dimensions.*.tiers);
- every `meter_event.usage` name is one the tariff prices;
- a `billing_window_id` shaped YYYY-MM or YYYY-MM-DD contains the `event_timestamp`;
- an integer is written as an integer: JSON Schema 2020-12 counts `2.0` as the integer 2, vbill
  reads one spelling of each value (docs/protocol.md §2) and refuses `2.0` with a 422.

Why a `filter_failure` hook, and not `expected-statuses` with 422 on these operations (what
`schemathesis explain ST202` suggests): that would excuse every 422 of /attest, /tariff-key,
/corrections and /limits, so a future field the document forgets would pass unseen. Here a
"schema-valid request rejected" (ST202) failure is dropped only when the answer is a 422 whose
`detail.field` names the field of one of the rules above AND the request itself breaks that
rule, judged from the request alone (never by calling vbill's own checks, which would excuse
whatever they refuse). schemathesis still sends these requests and still reports the dropped
failures ("dropped by `filter_failure`"); every other failure of every check fails the run.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

_MISSING = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_TIER = re.compile(r"(.*\.dimensions\.[^.]+\.tiers)\[(\d+)\]\.up_to")
_PERIOD = re.compile(r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?")


def _at(body: Any, path: str) -> Any:
    """The value at a dotted path such as `tariff_snapshot.dimensions.x.tiers[1].up_to`."""
    node = body
    for name, index in _STEP.findall(path):
        index = index or (name if name.isdigit() else "")  # pydantic writes `tiers.0`
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return _MISSING
            node = node[int(index)]
        elif isinstance(node, dict) and name in node:
            node = node[name]
        else:
            return _MISSING
    return node


def _in_body(body: Any, field: str) -> str | None:
    """`field` as a path into `body`: the correction route names its fields `correction.…`."""
    for path in (field, field.removeprefix("correction.")):
        if _at(body, path) is not _MISSING:
            return path
    return None


def whole_float(body: Any, field: str) -> bool:
    """An integer field sent as a whole float (`2.0`)."""
    path = _in_body(body, field)
    value = None if path is None else _at(body, path)
    return isinstance(value, float) and value.is_integer()


def min_above_max(body: Any, field: str) -> bool:
    """tariff_snapshot.min_charge_micros > tariff_snapshot.max_charge_micros."""
    if not field.endswith("tariff_snapshot.min_charge_micros"):
        return False
    tariff = _at(body, field.removesuffix(".min_charge_micros"))
    if not isinstance(tariff, dict):
        return False
    low, high = tariff.get("min_charge_micros"), tariff.get("max_charge_micros")
    return type(low) is int and type(high) is int and low > high


def tier_not_above_previous(body: Any, field: str) -> bool:
    """A tier's up_to at or below the previous tier's."""
    m = _TIER.fullmatch(field)
    if m is None or int(m[2]) == 0:
        return False
    tiers = _at(body, m[1])
    i = int(m[2])
    if not isinstance(tiers, list) or i >= len(tiers):
        return False
    bound, previous = tiers[i].get("up_to"), tiers[i - 1].get("up_to")
    return type(bound) is int and type(previous) is int and bound <= previous


def usage_not_priced(body: Any, field: str) -> bool:
    """A meter_event.usage name the tariff's dimensions do not price."""
    prefix = "meter_event.usage."
    if not field.startswith(prefix):
        return False
    dimensions = _at(body, "tariff_snapshot.dimensions")
    usage = _at(body, "meter_event.usage")
    name = field.removeprefix(prefix)
    return (
        isinstance(dimensions, dict)
        and isinstance(usage, dict)
        and name in usage
        and (name not in dimensions)
    )


def period_excludes_timestamp(body: Any, field: str) -> bool:
    """A YYYY-MM or YYYY-MM-DD billing_window_id whose period does not hold event_timestamp.
    The timestamp is UTC with a Z (its pattern), so holding it is a prefix of its text."""
    if field != "meter_event.billing_window_id":
        return False
    window = _at(body, "meter_event.billing_window_id")
    timestamp = _at(body, "meter_event.event_timestamp")
    if not (isinstance(window, str) and isinstance(timestamp, str)):
        return False
    if _PERIOD.fullmatch(window) is None:
        return False
    return not timestamp.startswith(window + ("T" if len(window) == 10 else "-"))


RULES = (whole_float, min_above_max, tier_not_above_previous, usage_not_priced)
RULES += (period_excludes_timestamp,)


def excused(failure: object, body: Any, status: int, detail: Any) -> bool:
    """True only for a schema-valid request refused (ST202) with a 422 naming the field of a
    rule above that the request breaks."""
    if not isinstance(failure, RejectedPositiveData) or status != 422:
        return False
    if not isinstance(detail, dict) or not isinstance(detail.get("field"), str):
        return False
    return any(rule(body, detail["field"]) for rule in RULES)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the excused ones (see the module docstring)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return True
    return not excused(failure, case.body, response.status_code, detail)
