"""Cron expressions as Kubeflow Pipelines reads them, checked before anything is sent.

KFP's scheduler parses cron with robfig/cron and SECONDS FIRST: six fields,
`second minute hour day-of-month month day-of-week` ("0 0 3 * * *" is 03:00
daily). Most people write the classic five fields ("0 3 * * *"); sent
unchanged, KFP would read them shifted by one field. So five fields are
accepted and converted by prefixing second 0, and the caller says so.
"""

from __future__ import annotations

import dataclasses
import re

# (name, low, high, names) for the six KFP fields.
_FIELDS = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_TERM = re.compile(r"^(?P<range>\*|\?|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>[0-9]+))?$")


class CronError(ValueError):
    """The expression is not one KFP's scheduler accepts; the message says which field and why."""


@dataclasses.dataclass(frozen=True)
class Cron:
    expression: str  # what KFP gets: six fields or a descriptor
    given: str  # what the user wrote
    converted: bool  # True when five fields were turned into six

    def describe(self) -> str:
        if self.converted:
            return f"cron '{self.given}' (5 fields) sent to KFP as '{self.expression}' (6 fields, seconds first)"
        return f"cron '{self.expression}'"


def parse(expression: str) -> Cron:
    """Validates a 5- or 6-field cron expression or a descriptor; returns KFP's 6-field form."""
    given = " ".join((expression or "").split())
    if not given:
        raise CronError("the cron expression is empty; e.g. '0 3 * * *' (daily at 03:00)")
    if given.startswith("@"):
        if given.lower() not in DESCRIPTORS:
            raise CronError(f"cron {given!r}: unknown descriptor; use one of {', '.join(DESCRIPTORS)}")
        return Cron(given.lower(), given, False)
    fields = given.split(" ")
    if len(fields) == 5:
        fields, converted = ["0", *fields], True
    elif len(fields) == 6:
        converted = False
    else:
        raise CronError(f"cron {given!r}: has {len(fields)} fields; give 5 (minute hour day month weekday) "
                        "or KFP's 6 (second minute hour day month weekday)")
    for value, (name, low, high, names) in zip(fields, _FIELDS):
        _check_field(given, value, name, low, high, names)
    return Cron(" ".join(fields), given, converted)


def _check_field(given: str, value: str, name: str, low: int, high: int, names: tuple[str, ...]) -> None:
    for term in value.split(","):
        match = _TERM.match(term)
        if not match:
            raise CronError(f"cron {given!r}: {name} field {value!r} is not valid")
        part, step = match.group("range"), match.group("step")
        if part == "?" and name not in ("day-of-month", "day-of-week"):
            raise CronError(f"cron {given!r}: '?' is only allowed in day-of-month and day-of-week, not {name}")
        if step is not None and int(step) < 1:
            raise CronError(f"cron {given!r}: {name} step must be >= 1")
        if part in ("*", "?"):
            continue
        bounds = [_number(given, bound, name, low, high, names) for bound in part.split("-")]
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise CronError(f"cron {given!r}: {name} range {part!r} runs backwards")


def _number(given: str, token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if token.upper() in names:
        return names.index(token.upper()) + low
    if not token.isdigit():
        raise CronError(f"cron {given!r}: {name} value {token!r} is not a number"
                        + (f" or one of {', '.join(names)}" if names else ""))
    number = int(token)
    if not low <= number <= high:
        raise CronError(f"cron {given!r}: {name} value {number} is outside {low}-{high}")
    return number
