"""Business hours: when a queue is open, and deadlines counted in its open minutes.

A business minute is a real elapsed minute whose local wall-clock time (in the calendar's time
zone) falls inside one of that weekday's shifts, on a day that is not a holiday. Shifts are local
wall times, so a 09:00-19:00 shift stays 09:00-19:00 across both DST changes; a shift that spans
a DST jump is as long as the time that really passes. Pure: the `holidays` package is data.

That definition settles the DST edge cases (the property tests check it against a
minute-by-minute count):

- Spring forward: wall times in the gap never happen, so a shift bound inside the gap acts as the
  instant of the jump. On a 02:00->03:00 night a 00:30-02:30 shift closes at 02:00 (= 03:00 summer
  time) and a 02:30-04:00 shift opens at 03:00 summer time: the shifts are just shorter.
- Fall back: wall times in the repeated hour happen twice and both passes count, so a 00:00-04:00
  shift on a 03:00->02:00 night lasts five real hours. A start inside the repeated hour opens on
  the first pass (fold=0); a shift with a bound inside it is open in the part of each pass that
  falls inside it (02:30-04:00: 02:30-03:00 summer time, closed 02:00-02:30 winter time, then
  02:30-04:00 winter time).

`always_open` means every minute counts: hours, holidays and closed dates are ignored.

The work is done interval by interval (never minute by minute): the UTC time line is cut into
stretches of constant UTC offset (cached per zone and UTC day), and in each stretch the open wall
intervals of the local dates it covers are shifted back by that offset.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays import country_holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_serializer,
    field_validator,
    model_validator,
)

_DAY = timedelta(days=1)
# Longest stretch without a single open minute before the search gives up.
_MAX_CLOSED = timedelta(days=400)
# Offsets are sampled this often to find DST transitions (then bisected to the second).
_PROBE = timedelta(hours=1)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class Shift(BaseModel):
    """Open from `start` to `end` local time on the same day; `end` 24:00 is written "24:00"."""

    model_config = ConfigDict(frozen=True)

    start: time
    end: time  # time.max stands for 24:00

    @field_validator("end", mode="before")
    @classmethod
    def _end_of_day(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in {"24:00", "24:00:00"}:
            return time.max
        return value

    @field_validator("start", "end")
    @classmethod
    def _wall_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("shift times are local wall times; give them without a UTC offset")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Shift:
        if self.start >= self.end:
            raise ValueError(
                f"a shift must start before it ends (got {_format_shift(self)}); "
                "a shift past midnight is two shifts"
            )
        return self

    @field_serializer("end", when_used="json")
    def _write_end(self, value: time) -> str:
        return "24:00" if value == time.max else value.isoformat()


class HolidaySource(BaseModel):
    """Public holidays from the `holidays` package: ISO country code, optional subdivision."""

    model_config = ConfigDict(frozen=True)

    country: str = Field(min_length=2, max_length=3)
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known(self) -> HolidaySource:
        try:
            country_holidays(self.country, subdiv=self.subdivision)
        except NotImplementedError as exc:  # how `holidays` reports an unknown country/subdiv
            raise ValueError(f"no public holidays known for {self._label()}: {exc}") from exc
        return self

    def _label(self) -> str:
        return self.country if self.subdivision is None else f"{self.country}-{self.subdivision}"


class BusinessCalendar(BaseModel):
    model_config = ConfigDict(frozen=True)

    timezone: str
    always_open: bool = False
    hours: dict[Weekday, list[Shift]] = Field(default_factory=dict)
    holidays: HolidaySource | None = None
    closed_dates: list[date] = Field(default_factory=list)

    # Shifts as (start, end) offsets from local midnight, indexed by date.weekday().
    _week: tuple[tuple[tuple[timedelta, timedelta], ...], ...] = PrivateAttr(default=())
    _closed: frozenset[date] = PrivateAttr(default=frozenset())

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name)") from exc
        return value

    @model_validator(mode="after")
    def _coherent(self) -> BusinessCalendar:
        for day, shifts in self.hours.items():
            ordered = sorted(shifts, key=lambda shift: shift.start)
            for before, after in pairwise(ordered):
                if after.start < before.end:
                    raise ValueError(
                        f"shifts on {day.value} overlap: {_format_shift(before)} and "
                        f"{_format_shift(after)}"
                    )
        if not self.always_open and not any(self.hours.values()):
            raise ValueError(
                "the calendar is never open (no shifts and not always_open), "
                "so no deadline would ever come"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._week = tuple(
            tuple(
                _bounds(shift)
                for shift in sorted(self.hours.get(Weekday(name), []), key=lambda s: s.start)
            )
            for name in _WEEKDAYS
        )
        self._closed = frozenset(self.closed_dates)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, at: datetime) -> bool:
        _utc(at)  # refuses a naive datetime
        if self.always_open:
            return True
        wall = at.astimezone(self.zone).replace(tzinfo=None)
        midnight = datetime.combine(wall.date(), time())
        return any(
            midnight + start <= wall < midnight + end for start, end in self._day(wall.date())
        )

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the next opening; in the calendar's time zone."""
        origin = _utc(at)
        if self.always_open:
            return at.astimezone(self.zone)
        for start, _ in self._spans(origin):
            return at.astimezone(self.zone) if start <= origin else self._local(start)
        raise AssertionError("unreachable: _spans raises instead of running out")

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The instant when `minutes` open minutes have passed since `start`."""
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"minutes must be a finite number >= 0, got {minutes!r}")
        if minutes == 0:
            return self.next_open(start)
        origin = _utc(start)
        remaining = timedelta(minutes=minutes)
        if self.always_open:
            return self._local(origin + remaining)
        for begin, end in self._spans(origin):
            if end - begin >= remaining:
                return self._local(begin + remaining)
            remaining -= end - begin
        raise AssertionError("unreachable: _spans raises instead of running out")

    def business_minutes_between(self, start: datetime, end: datetime) -> float:
        origin, until = _utc(start), _utc(end)
        if until <= origin:
            return 0.0
        if self.always_open:
            return (until - origin).total_seconds() / 60
        total = timedelta()
        for begin, finish in self._spans(origin, until):
            if begin >= until:
                break
            total += min(finish, until) - begin
        return total.total_seconds() / 60

    # Internals. Instants are naive UTC datetimes, wall times naive local datetimes.

    def _day(self, day: date) -> tuple[tuple[timedelta, timedelta], ...]:
        """That local date's open shifts as offsets from its midnight (none on a closed day)."""
        if day in self._closed or (self.holidays is not None and _is_holiday(self.holidays, day)):
            return ()
        return self._week[day.weekday()]

    def _spans(
        self, origin: datetime, until: datetime | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals [begin, end) from `origin` on, in order, disjoint (maybe touching).

        The first one is clipped to start at `origin` at the earliest. Stops before `until`
        when given; otherwise goes on, and raises ValueError after `_MAX_CLOSED` without an
        open minute.
        """
        last_open = origin
        utc_day = origin.date()
        while True:
            for seg_start, seg_end, offset in _utc_day_segments(self.timezone, utc_day):
                if seg_end <= origin:
                    continue
                low = max(seg_start, origin)
                if until is not None and low >= until:
                    return
                wall_low, wall_high = low + offset, seg_end + offset
                day = wall_low.date()
                midnight = datetime.combine(day, time())
                while midnight < wall_high:
                    for start, end in self._day(day):
                        begin = max(midnight + start, wall_low)
                        finish = min(midnight + end, wall_high)
                        if begin < finish:
                            last_open = finish - offset
                            yield begin - offset, finish - offset
                    day += _DAY
                    midnight += _DAY
            utc_day += _DAY
            if until is None and datetime.combine(utc_day, time()) - last_open > _MAX_CLOSED:
                raise ValueError(
                    f"the calendar has no open minute in the {_MAX_CLOSED.days} days after "
                    f"{last_open.isoformat()} UTC"
                )

    def _local(self, instant: datetime) -> datetime:
        return instant.replace(tzinfo=UTC).astimezone(self.zone)


def _aware(at: datetime) -> bool:
    return at.tzinfo is not None and at.utcoffset() is not None


def _utc(at: datetime) -> datetime:
    """`at` as a naive UTC datetime; naive input is refused (its zone would be a guess)."""
    if not _aware(at):
        raise ValueError(f"a timezone-aware datetime is needed, got {at.isoformat()}")
    return at.astimezone(UTC).replace(tzinfo=None)


def _bounds(shift: Shift) -> tuple[timedelta, timedelta]:
    """Start and end of a shift as offsets from local midnight (24:00 is one day)."""
    end = _DAY if shift.end == time.max else _since_midnight(shift.end)
    return _since_midnight(shift.start), end


def _is_holiday(source: HolidaySource, day: date) -> bool:
    return day in _holiday_dates(source.country, source.subdivision, day.year)


def _since_midnight(value: time) -> timedelta:
    return timedelta(
        hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
    )


def _format_time(value: time) -> str:
    exact_minute = value.second == 0 and value.microsecond == 0
    return value.isoformat(timespec="minutes") if exact_minute else value.isoformat()


def _format_end(value: time) -> str:
    return "24:00" if value == time.max else _format_time(value)


def _format_shift(shift: Shift) -> str:
    return f"{_format_time(shift.start)}-{_format_end(shift.end)}"


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    """UTC offset of `zone` at the naive UTC `instant`."""
    return zone.fromutc(instant.replace(tzinfo=zone)).replace(tzinfo=None) - instant


@lru_cache(maxsize=8192)
def _utc_day_segments(
    timezone: str, utc_day: date
) -> tuple[tuple[datetime, datetime, timedelta], ...]:
    """The UTC day cut where the zone's offset changes: (start, end, offset) in naive UTC."""
    zone = ZoneInfo(timezone)
    low = datetime.combine(utc_day, time())
    high = low + _DAY
    segments: list[tuple[datetime, datetime, timedelta]] = []
    start, offset, probe = low, _offset(zone, low), low
    while probe < high:
        step = min(probe + _PROBE, high)
        if _offset(zone, step) == offset:
            probe = step
            continue
        # The offset is `offset` at probe + same and different at probe + differs (seconds);
        # transitions fall on whole seconds.
        same, differs = 0, round((step - probe).total_seconds())
        while differs - same > 1:
            middle = (same + differs) // 2
            if _offset(zone, probe + timedelta(seconds=middle)) == offset:
                same = middle
            else:
                differs = middle
        change = probe + timedelta(seconds=differs)
        if change >= high:
            break
        segments.append((start, change, offset))
        start, offset, probe = change, _offset(zone, change), change
    segments.append((start, high, offset))
    return tuple(segments)


@lru_cache(maxsize=1024)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """Holiday dates in `year` (neighbouring years are loaded for observed days that spill)."""
    table = country_holidays(country, subdiv=subdivision, years=(year - 1, year, year + 1))
    return frozenset(day for day in table if day.year == year)
