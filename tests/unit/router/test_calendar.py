"""Business calendar: examples in real zones, DST nights, and properties against brute force."""

from __future__ import annotations

import itertools
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from holidays import country_holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.router.core.calendar import BusinessCalendar, HolidaySource, Shift, Weekday

MADRID = ZoneInfo("Europe/Madrid")
MEXICO = ZoneInfo("America/Mexico_City")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
P2_MINUTES = 60


def shift(start: str, end: str) -> dict[str, str]:
    return {"start": start, "end": end}


def calendar(
    timezone: str, hours: dict[str, list[dict[str, str]]], **extra: Any
) -> BusinessCalendar:
    return BusinessCalendar.model_validate({"timezone": timezone, "hours": hours, **extra})


def spain() -> BusinessCalendar:
    hours = {day: [shift("09:00", "19:00")] for day in WORKDAYS}
    hours["sat"] = [shift("10:00", "14:00")]
    return calendar("Europe/Madrid", hours, holidays={"country": "ES"})


def around_the_clock_sundays(zone: str = "Europe/Madrid") -> BusinessCalendar:
    return calendar(zone, {"sun": [shift("00:00", "24:00")]})


# Equality between datetimes in different zones is always False for a wall time in a repeated
# hour with fold=1 (PEP 495), so instants from different zones are compared as timestamps.


def in_zone(at: datetime, zone: ZoneInfo) -> None:
    assert isinstance(at.tzinfo, ZoneInfo)
    assert at.tzinfo.key == zone.key


# Examples in real zones.


def test_p2_clock_started_saturday_night_in_madrid_is_due_monday_at_ten() -> None:
    cal = spain()
    started = datetime(2026, 11, 28, 23, 0, tzinfo=MADRID)  # Saturday, after the 10-14 shift

    due = cal.add_business_minutes(started, P2_MINUTES)

    assert due == datetime(2026, 11, 30, 10, 0, tzinfo=MADRID)
    assert due.isoformat() == "2026-11-30T10:00:00+01:00"
    in_zone(due, MADRID)
    assert cal.business_minutes_between(started, due) == P2_MINUTES


def test_mention_on_the_eve_of_a_national_holiday_is_due_after_it() -> None:
    assert "Immaculate" in (country_holidays("ES", years=2026).get(date(2026, 12, 8)) or "")
    cal = spain()
    evening = datetime(2026, 12, 7, 20, 0, tzinfo=MADRID)  # Monday, after closing

    assert not cal.is_open(evening)
    assert not cal.is_open(datetime(2026, 12, 8, 12, 0, tzinfo=MADRID))  # Tuesday, holiday
    assert cal.next_open(evening) == datetime(2026, 12, 9, 9, 0, tzinfo=MADRID)
    assert cal.add_business_minutes(evening, P2_MINUTES) == datetime(
        2026, 12, 9, 10, 0, tzinfo=MADRID
    )
    # A whole working day from the eve: 10 hours on Wednesday.
    assert cal.add_business_minutes(evening, 600) == datetime(2026, 12, 9, 19, 0, tzinfo=MADRID)
    assert cal.add_business_minutes(evening, 601) == datetime(2026, 12, 10, 9, 1, tzinfo=MADRID)


def test_instants_in_other_zones_are_read_as_instants_and_answered_in_the_calendar_zone() -> None:
    cal = spain()
    started = datetime(2026, 11, 30, 7, 30, tzinfo=UTC)  # 08:30 in Madrid, before opening

    assert not cal.is_open(started)
    assert cal.is_open(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # 09:00 in Madrid
    opening = cal.next_open(started)
    assert opening == datetime(2026, 11, 30, 9, 0, tzinfo=MADRID)
    in_zone(opening, MADRID)
    inside = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
    assert cal.next_open(inside) == inside
    in_zone(cal.next_open(inside), MADRID)
    in_zone(cal.add_business_minutes(inside, 0), MADRID)


def test_zero_minutes_is_due_now_when_open_and_at_opening_when_closed() -> None:
    cal = spain()
    open_now = datetime(2026, 11, 30, 11, 15, 42, tzinfo=MADRID)
    closed_now = datetime(2026, 11, 29, 11, 15, tzinfo=MADRID)  # Sunday

    assert cal.add_business_minutes(open_now, 0) == open_now
    assert cal.add_business_minutes(closed_now, 0) == datetime(2026, 11, 30, 9, 0, tzinfo=MADRID)


def test_fractions_of_a_minute_count() -> None:
    cal = spain()
    start = datetime(2026, 11, 30, 18, 59, tzinfo=MADRID)

    due = cal.add_business_minutes(start, 1.5)

    assert due == datetime(2026, 12, 1, 9, 0, 30, tzinfo=MADRID)
    assert cal.business_minutes_between(start, due) == 1.5


def test_mexico_city_monday_to_saturday_with_mexican_holidays() -> None:
    assert date(2026, 11, 16) in country_holidays("MX", years=2026)  # Revolution Day, Monday
    hours = {day: [shift("08:00", "20:00")] for day in (*WORKDAYS, "sat")}
    cal = calendar("America/Mexico_City", hours, holidays={"country": "MX"})
    started = datetime(2026, 11, 14, 19, 30, tzinfo=MEXICO)  # Saturday, half an hour left

    due = cal.add_business_minutes(started, 120)

    assert due == datetime(2026, 11, 17, 9, 30, tzinfo=MEXICO)
    assert due.utcoffset() == timedelta(hours=-6)
    assert cal.business_minutes_between(started, due) == 120
    assert not cal.is_open(datetime(2026, 11, 16, 12, 0, tzinfo=MEXICO))
    assert cal.is_open(datetime(2026, 11, 14, 8, 0, tzinfo=MEXICO))


def test_london_weekdays_with_british_christmas_holidays() -> None:
    gb = country_holidays("GB", years=2026)
    assert {date(2026, 12, 25), date(2026, 12, 28)} <= set(gb)  # Boxing Day observed on Monday
    hours = {day: [shift("09:00", "17:30")] for day in WORKDAYS}
    cal = calendar("Europe/London", hours, holidays={"country": "GB"})
    started = datetime(2026, 12, 24, 17, 0, tzinfo=LONDON)  # Thursday

    due = cal.add_business_minutes(started, P2_MINUTES)

    assert due == datetime(2026, 12, 29, 9, 30, tzinfo=LONDON)
    assert cal.business_minutes_between(started, due) == P2_MINUTES
    # A 17:30 close is exclusive; British summer time does not move the wall-clock hours.
    assert cal.is_open(datetime(2026, 7, 1, 17, 29, tzinfo=LONDON))
    assert not cal.is_open(datetime(2026, 7, 1, 17, 30, tzinfo=LONDON))
    assert cal.is_open(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))  # 09:00 BST


def test_closed_dates_close_the_whole_local_day() -> None:
    hours = {day: [shift("09:00", "17:00")] for day in WORKDAYS}
    cal = calendar("Europe/London", hours, closed_dates=["2026-06-01"])

    assert not cal.is_open(datetime(2026, 6, 1, 12, 0, tzinfo=LONDON))
    assert cal.next_open(datetime(2026, 6, 1, 12, 0, tzinfo=LONDON)) == datetime(
        2026, 6, 2, 9, 0, tzinfo=LONDON
    )


def test_split_shift_day() -> None:
    cal = calendar("Europe/Madrid", {"mon": [shift("16:00", "19:00"), shift("09:00", "14:00")]})
    monday = datetime(2026, 6, 1, tzinfo=MADRID)

    assert cal.is_open(monday.replace(hour=13, minute=59))
    assert not cal.is_open(monday.replace(hour=14))
    assert not cal.is_open(monday.replace(hour=15, minute=59))
    assert cal.next_open(monday.replace(hour=15)) == monday.replace(hour=16)
    assert cal.add_business_minutes(monday.replace(hour=13, minute=30), 60) == monday.replace(
        hour=16, minute=30
    )
    assert cal.business_minutes_between(monday, monday + timedelta(days=1)) == 8 * 60
    # The week after: 13:30 plus 8 hours less 30 minutes is the next Monday's 16:30.
    assert cal.add_business_minutes(monday.replace(hour=13, minute=30), 480) == datetime(
        2026, 6, 8, 13, 30, tzinfo=MADRID
    )


def test_touching_shifts_are_one_stretch() -> None:
    cal = calendar("UTC", {"mon": [shift("09:00", "14:00"), shift("14:00", "19:00")]})
    monday = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)

    assert cal.add_business_minutes(monday, 60) == monday.replace(hour=14, minute=30)
    assert cal.is_open(monday.replace(hour=14))


def test_shift_until_midnight_runs_into_the_next_days_shift() -> None:
    cal = calendar("UTC", {"mon": [shift("20:00", "24:00")], "tue": [shift("00:00", "02:00")]})
    start = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)

    assert cal.is_open(datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC))
    assert cal.add_business_minutes(start, 120) == datetime(2026, 6, 2, 1, 0, tzinfo=UTC)


# DST in Europe/Madrid: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00 (both Sundays).
# `sunday + timedelta(days=1)` is wall-clock arithmetic: the next local midnight.


def test_spring_forward_sunday_has_23_open_hours() -> None:
    cal = around_the_clock_sundays()
    sunday = datetime(2026, 3, 29, tzinfo=MADRID)
    monday = datetime(2026, 3, 30, tzinfo=MADRID)

    assert cal.business_minutes_between(sunday, monday) == 23 * 60
    assert cal.add_business_minutes(sunday, 23 * 60) == monday
    # 01:30 CET plus an hour of real time is 03:30 CEST.
    due = cal.add_business_minutes(datetime(2026, 3, 29, 1, 30, tzinfo=MADRID), 60)
    assert due == datetime(2026, 3, 29, 3, 30, tzinfo=MADRID)
    assert due.utcoffset() == timedelta(hours=2)


def test_fall_back_sunday_has_25_open_hours() -> None:
    cal = around_the_clock_sundays()
    sunday = datetime(2026, 10, 25, tzinfo=MADRID)
    monday = datetime(2026, 10, 26, tzinfo=MADRID)

    assert cal.business_minutes_between(sunday, monday) == 25 * 60
    assert cal.add_business_minutes(sunday, 25 * 60) == monday
    # 02:30 CEST plus an hour of real time is 02:30 CET (the second pass, fold=1).
    due = cal.add_business_minutes(datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=MADRID), 60)
    assert (due.hour, due.minute, due.fold) == (2, 30, 1)
    assert due.utcoffset() == timedelta(hours=1)


def test_shift_across_the_spring_forward_gap_is_shorter() -> None:
    cal = calendar("Europe/Madrid", {"sun": [shift("01:00", "04:00")]})
    sunday = datetime(2026, 3, 29, tzinfo=MADRID)

    assert cal.business_minutes_between(sunday, sunday + timedelta(days=1)) == 120
    assert cal.add_business_minutes(sunday, 60) == datetime(2026, 3, 29, 3, 0, tzinfo=MADRID)
    assert cal.add_business_minutes(sunday, 120) == datetime(2026, 3, 29, 4, 0, tzinfo=MADRID)


def test_shift_bounds_inside_the_spring_forward_gap_act_as_the_jump() -> None:
    # 02:30 never happens that night: the 02:30-04:00 shift opens at the jump (03:00 CEST) and
    # the 00:30-02:30 shift closes there (02:00 CET = 03:00 CEST).
    late = calendar("Europe/Madrid", {"sun": [shift("02:30", "04:00")]})
    early = calendar("Europe/Madrid", {"sun": [shift("00:30", "02:30")]})
    sunday = datetime(2026, 3, 29, tzinfo=MADRID)
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)

    assert late.next_open(sunday) == jump
    assert late.next_open(sunday).isoformat() == "2026-03-29T03:00:00+02:00"
    assert late.business_minutes_between(sunday, sunday + timedelta(days=1)) == 60
    assert early.business_minutes_between(sunday, sunday + timedelta(days=1)) == 90
    assert early.add_business_minutes(sunday, 90) == jump
    assert not early.is_open(jump)


def test_shift_across_the_fall_back_overlap_is_longer() -> None:
    cal = calendar("Europe/Madrid", {"sun": [shift("01:00", "04:00")]})
    sunday = datetime(2026, 10, 25, tzinfo=MADRID)

    assert cal.business_minutes_between(sunday, sunday + timedelta(days=1)) == 4 * 60
    due = cal.add_business_minutes(sunday, 90)
    assert (due.hour, due.minute, due.fold) == (2, 30, 0)
    due = cal.add_business_minutes(sunday, 150)
    assert (due.hour, due.minute, due.fold) == (2, 30, 1)


def test_shift_bound_inside_the_repeated_hour_counts_both_passes() -> None:
    cal = calendar("Europe/Madrid", {"sun": [shift("02:30", "04:00")]})
    sunday = datetime(2026, 10, 25, tzinfo=MADRID)

    def at(hour: int, minute: int, fold: int) -> datetime:
        return datetime(2026, 10, 25, hour, minute, fold=fold, tzinfo=MADRID)

    assert not cal.is_open(at(2, 15, 0))
    assert cal.is_open(at(2, 45, 0))
    assert not cal.is_open(at(2, 15, 1))
    assert cal.is_open(at(2, 45, 1))
    assert cal.business_minutes_between(sunday, sunday + timedelta(days=1)) == 30 + 90
    assert cal.next_open(at(2, 0, 1)).timestamp() == at(2, 30, 1).timestamp()
    due = cal.add_business_minutes(sunday, 31)  # 30 minutes in summer time, then 02:30 CET
    assert (due.hour, due.minute, due.fold) == (2, 31, 1)
    assert due.utcoffset() == timedelta(hours=1)


def test_always_open_counts_real_minutes_across_both_dst_changes() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Madrid", always_open=True, holidays=HolidaySource(country="ES")
    )
    spring = datetime(2026, 3, 29, 1, 50, tzinfo=MADRID)
    autumn = datetime(2026, 10, 25, 2, 50, fold=0, tzinfo=MADRID)

    due = cal.add_business_minutes(spring, 15)
    assert due == datetime(2026, 3, 29, 3, 5, tzinfo=MADRID)  # 15 real minutes, 75 on the wall
    assert cal.business_minutes_between(spring, due) == 15
    due = cal.add_business_minutes(autumn, 15)
    assert (due.hour, due.minute, due.fold) == (2, 5, 1)  # 15 real minutes, -45 on the wall
    assert cal.business_minutes_between(autumn, due) == 15
    in_zone(due, MADRID)
    # Every minute counts, holidays included.
    christmas = datetime(2026, 12, 25, 12, 0, tzinfo=MADRID)
    assert cal.is_open(christmas)
    assert cal.next_open(christmas) == christmas


def test_lord_howe_half_hour_dst_change() -> None:
    cal = around_the_clock_sundays("Australia/Lord_Howe")
    sunday = datetime(2026, 4, 5, tzinfo=LORD_HOWE)  # 02:00 +11:00 -> 01:30 +10:30

    assert cal.business_minutes_between(sunday, sunday + timedelta(days=1)) == 24 * 60 + 30


def test_deadline_search_gives_up_after_a_long_closure() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(60)]
    cal = calendar("UTC", {"mon": [shift("09:00", "10:00")]}, closed_dates=mondays)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    began = clock.perf_counter()
    with pytest.raises(ValueError, match="no open minute"):
        cal.next_open(start)
    with pytest.raises(ValueError, match="no open minute"):
        cal.add_business_minutes(start, 5)
    assert clock.perf_counter() - began < 1.0
    # Counting between two instants needs no search past the end.
    assert cal.business_minutes_between(start, start + timedelta(days=900)) > 0
    assert cal.business_minutes_between(start, start + timedelta(days=300)) == 0


def test_a_day_of_business_minutes_takes_well_under_a_millisecond() -> None:
    cal = spain()
    start = datetime(2026, 3, 27, 12, 0, tzinfo=MADRID)  # Friday before the spring change
    assert cal.add_business_minutes(start, 1440) == datetime(2026, 3, 31, 12, 0, tzinfo=MADRID)

    timings = []
    for _ in range(50):
        began = clock.perf_counter()
        cal.add_business_minutes(start, 1440)
        timings.append(clock.perf_counter() - began)

    assert min(timings) < 0.001


# Refusals.


def test_naive_datetimes_and_negative_minutes_are_refused() -> None:
    cal = spain()
    naive = datetime(2026, 11, 30, 10, 0)

    for call in (
        lambda: cal.is_open(naive),
        lambda: cal.next_open(naive),
        lambda: cal.add_business_minutes(naive, 5),
        lambda: cal.business_minutes_between(naive, naive),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()
    aware = naive.replace(tzinfo=MADRID)
    for minutes in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="minutes"):
            cal.add_business_minutes(aware, minutes)
    assert cal.business_minutes_between(aware, aware - timedelta(hours=5)) == 0.0


def test_overlapping_shifts_are_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"shifts on mon overlap: 09:00-14:00 and 13:00-19:00"
    ):
        calendar("Europe/Madrid", {"mon": [shift("13:00", "19:00"), shift("09:00", "14:00")]})
    with pytest.raises(ValidationError, match="overlap"):
        calendar("UTC", {"tue": [shift("09:00", "24:00"), shift("09:00", "10:00")]})


def test_unknown_time_zone_is_refused_by_name() -> None:
    for bad in ("Europe/Atlantis", "", "../etc/passwd", "Europe"):
        with pytest.raises(ValidationError, match="unknown time zone"):
            calendar(bad, {"mon": [shift("09:00", "17:00")]})


def test_never_open_calendar_is_refused() -> None:
    with pytest.raises(ValidationError, match="never open"):
        BusinessCalendar(timezone="Europe/Madrid")
    with pytest.raises(ValidationError, match="never open"):
        calendar("Europe/Madrid", {"mon": [], "tue": []})
    assert BusinessCalendar(timezone="Europe/Madrid", always_open=True).is_open(
        datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_shift_bounds() -> None:
    whole_day = Shift.model_validate({"start": "00:00", "end": "24:00"})
    assert whole_day.end == time.max
    assert Shift.model_validate_json(whole_day.model_dump_json()) == whole_day
    assert '"end":"24:00"' in whole_day.model_dump_json()
    for start, end in (("10:00", "09:00"), ("09:00", "09:00"), ("24:00", "24:00")):
        with pytest.raises(ValidationError):
            Shift.model_validate({"start": start, "end": end})
    with pytest.raises(ValidationError, match="local wall times"):
        Shift.model_validate({"start": "09:00+01:00", "end": "10:00"})


def test_unknown_holiday_country_or_subdivision_is_refused() -> None:
    with pytest.raises(ValidationError, match="no public holidays known for XX"):
        HolidaySource(country="XX")
    with pytest.raises(ValidationError, match="ES-ZZ"):
        HolidaySource(country="ES", subdivision="ZZ")
    assert HolidaySource(country="ES", subdivision="MD").subdivision == "MD"


# Properties against a minute-by-minute brute force.

ZONE_HOLIDAYS: dict[str, HolidaySource | None] = {
    "Europe/Madrid": HolidaySource(country="ES"),
    "America/Mexico_City": HolidaySource(country="MX"),
    "Europe/London": HolidaySource(country="GB", subdivision="ENG"),
    "America/New_York": HolidaySource(country="US", subdivision="NY"),
    "Australia/Lord_Howe": HolidaySource(country="AU", subdivision="NSW"),
    "UTC": None,
}
# UTC instants of the DST changes in 2026-2027 of the zones above (Mexico City has none).
DST_CHANGES = [
    datetime.fromisoformat(text)
    for text in (
        "2026-03-29T01:00Z",  # Madrid, London
        "2026-10-25T01:00Z",
        "2027-03-28T01:00Z",
        "2027-10-31T01:00Z",
        "2026-03-08T07:00Z",  # New York
        "2026-11-01T06:00Z",
        "2027-03-14T07:00Z",
        "2027-11-07T06:00Z",
        "2026-04-04T15:00Z",  # Lord Howe: 30 minutes
        "2026-10-03T15:30Z",
        "2027-04-03T15:00Z",
        "2027-10-02T15:30Z",
    )
]
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
LAST = datetime(2027, 12, 31, tzinfo=UTC)
WEEKDAY_ORDER = list(Weekday)  # mon..sun, as date.weekday()


class BruteForce:
    """The definition, one UTC minute at a time: is the minute starting at `ts` open?"""

    def __init__(self, cal: BusinessCalendar) -> None:
        self.zone = ZoneInfo(cal.timezone)
        self.always_open = cal.always_open
        self.closed = set(cal.closed_dates)
        source = cal.holidays
        self.holidays = (
            None if source is None else country_holidays(source.country, subdiv=source.subdivision)
        )
        self.masks: list[list[bool]] = []
        for day in WEEKDAY_ORDER:
            mask = [False] * 1440
            for item in cal.hours.get(day, []):
                first = item.start.hour * 60 + item.start.minute
                last = 1440 if item.end == time.max else item.end.hour * 60 + item.end.minute
                for minute in range(first, last):
                    mask[minute] = True
            self.masks.append(mask)

    def open_at(self, ts: int) -> bool:
        if self.always_open:
            return True
        wall = datetime.fromtimestamp(ts, self.zone)
        day = wall.date()
        if day in self.closed or (self.holidays is not None and day in self.holidays):
            return False
        return self.masks[wall.weekday()][wall.hour * 60 + wall.minute]

    def flags(self, start: datetime, end: datetime) -> list[bool]:
        return [self.open_at(ts) for ts in range(stamp(start), stamp(end), 60)]

    def next_open(self, start: datetime) -> datetime:
        ts = stamp(start)
        while not self.open_at(ts):
            ts += 60
        return datetime.fromtimestamp(ts, UTC)


def after(at: datetime, delta: timedelta) -> datetime:
    """`delta` of real time after `at`, in at's zone (`at + delta` is wall-clock arithmetic)."""
    assert at.tzinfo is not None
    return (at.astimezone(UTC) + delta).astimezone(at.tzinfo)


def stamp(at: datetime) -> int:
    value = at.timestamp()
    assert value == int(value)
    return int(value)


def weekly_open_minutes(cal: BusinessCalendar) -> int:
    if cal.always_open:
        return 7 * 1440
    total = timedelta()
    for shifts in cal.hours.values():
        for item in shifts:
            end = (
                timedelta(days=1)
                if item.end == time.max
                else timedelta(hours=item.end.hour, minutes=item.end.minute)
            )
            total += end - timedelta(hours=item.start.hour, minutes=item.start.minute)
    return int(total.total_seconds() // 60)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime]:
    """A random calendar and a minute-aligned start in 2026-2027, often near a DST change."""
    zone = draw(st.sampled_from(sorted(ZONE_HOLIDAYS)))
    near_change = st.builds(
        lambda change, minutes: change + timedelta(minutes=minutes),
        st.sampled_from(DST_CHANGES),
        st.integers(-3 * 1440, 1440),
    )
    anywhere = st.builds(
        lambda minutes: FIRST + timedelta(minutes=minutes),
        st.integers(0, int((LAST - FIRST).total_seconds() // 60)),
    )
    start = draw(st.one_of(near_change, anywhere))
    if draw(st.booleans()):
        start = start.astimezone(ZoneInfo(zone))
    local_day = start.astimezone(ZoneInfo(zone)).date()
    hours: dict[str, list[dict[str, str]]] = {}
    for day in draw(st.sets(st.sampled_from(WEEKDAY_ORDER), min_size=1)):
        count = draw(st.integers(1, 3))
        # Bounds on a quarter-hour grid (96 = 24:00), so DST hours are often hit exactly.
        bounds = sorted(draw(st.sets(st.integers(0, 96), min_size=2 * count, max_size=2 * count)))
        hours[day.value] = [
            shift(quarter(bounds[n]), quarter(bounds[n + 1])) for n in range(0, 2 * count, 2)
        ]
    closed = draw(st.lists(st.integers(0, 10), max_size=3))
    cal = calendar(
        zone,
        hours,
        always_open=draw(st.integers(0, 9)) == 0,
        holidays=ZONE_HOLIDAYS[zone] if draw(st.booleans()) else None,
        closed_dates=[local_day + timedelta(days=n) for n in closed],
    )
    return cal, start


def quarter(n: int) -> str:
    return f"{n // 4:02d}:{n % 4 * 15:02d}"


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


DST_NIGHTS_2026 = {
    "Europe/Madrid": (date(2026, 3, 29), date(2026, 10, 25)),
    "Europe/London": (date(2026, 3, 29), date(2026, 10, 25)),
    "America/New_York": (date(2026, 3, 8), date(2026, 11, 1)),
    "Australia/Lord_Howe": (date(2026, 4, 5), date(2026, 10, 4)),
}


@pytest.mark.parametrize("zone_name", sorted(DST_NIGHTS_2026))
def test_every_half_hour_shift_around_the_dst_nights_matches_brute_force(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    grid = [quarter(2 * n) for n in range(9)]  # 00:00, 00:30, ... 04:00
    for day in DST_NIGHTS_2026[zone_name]:
        start = datetime.combine(day, time(), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        weekday = WEEKDAY_ORDER[day.weekday()].value
        for first, last in itertools.combinations(grid, 2):
            cal = calendar(zone_name, {weekday: [shift(first, last)]})
            brute = BruteForce(cal)
            flags = brute.flags(start, end)
            assert cal.business_minutes_between(start, end) == sum(flags), (day, first, last)
            opening = cal.next_open(start)
            assert stamp(opening) == stamp(brute.next_open(start)), (day, first, last)
            if any(flags):  # (an empty shift, inside the gap, is covered by next_open)
                due = cal.add_business_minutes(start, sum(flags))
                assert sum(brute.flags(start, due)) == sum(flags), (day, first, last)
                assert brute.open_at(stamp(due) - 60), (day, first, last)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_add_business_minutes_is_the_earliest_instant_with_that_many_open_minutes(
    scenario: tuple[BusinessCalendar, datetime], data: st.DataObject
) -> None:
    cal, start = scenario
    # Sparse calendars would need months of brute force for 3000 minutes: two weeks' worth.
    minutes = data.draw(st.integers(0, min(3000, 2 * weekly_open_minutes(cal))), label="minutes")
    brute = BruteForce(cal)

    due = cal.add_business_minutes(start, minutes)

    in_zone(due, ZoneInfo(cal.timezone))
    assert cal.business_minutes_between(start, due) == minutes
    flags = brute.flags(start, due)
    assert sum(flags) == minutes
    if minutes:
        assert flags[-1]  # the minute before `due` counted: nothing earlier has `minutes`
    else:
        assert stamp(due) == stamp(brute.next_open(start))


@PROPERTY_SETTINGS
@given(scenario=scenarios(), seconds=st.integers(0, 59))
def test_is_open_and_next_open_agree_with_brute_force(
    scenario: tuple[BusinessCalendar, datetime], seconds: int
) -> None:
    cal, minute = scenario
    brute = BruteForce(cal)
    at = after(minute, timedelta(seconds=seconds))
    open_now = brute.open_at(stamp(minute))

    assert cal.is_open(at) == open_now
    opening = cal.next_open(at)
    in_zone(opening, ZoneInfo(cal.timezone))
    if open_now:
        assert opening.timestamp() == at.timestamp()
    else:
        assert opening.timestamp() > at.timestamp()
        assert stamp(opening) == stamp(brute.next_open(minute))
        assert cal.is_open(opening)
        assert not cal.is_open(after(opening, -timedelta(microseconds=1)))


@PROPERTY_SETTINGS
@given(scenario=scenarios(), minutes=st.integers(-60, 4 * 1440))
def test_business_minutes_between_agrees_with_brute_force(
    scenario: tuple[BusinessCalendar, datetime], minutes: int
) -> None:
    cal, start = scenario
    end = after(start, timedelta(minutes=minutes))

    assert cal.business_minutes_between(start, end) == sum(BruteForce(cal).flags(start, end))
