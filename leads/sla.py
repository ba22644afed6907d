"""Business hours for the hand-off SLA: plain Python, no database.

A deadline of "4 business hours" counts only working time: a lead that
becomes MQL on Friday at 16:00 with a working day ending at 17:30 is due on
Monday at 10:30. The policy comes from settings (LEADCRM["SLA"]).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

# Far more working days than any SLA spans: guards against a policy with no
# working day at all looping for ever.
_MAX_DAYS = 3660


@dataclass(frozen=True)
class SlaPolicy:
    time_zone: ZoneInfo
    workdays: frozenset[int]  # Monday is 0
    day_start: time
    day_end: time
    holidays: frozenset[date]
    accept_hours: float
    contact_hours: float
    reassign_on_breach: bool

    @classmethod
    def from_settings(cls) -> "SlaPolicy":
        sla = settings.LEADCRM["SLA"]
        return cls(
            time_zone=ZoneInfo(sla["TIME_ZONE"]),
            workdays=frozenset(sla["WORKDAYS"]),
            day_start=sla["DAY_START"],
            day_end=sla["DAY_END"],
            holidays=frozenset(sla["HOLIDAYS"]),
            accept_hours=sla["ACCEPT_HOURS"],
            contact_hours=sla["CONTACT_HOURS"],
            reassign_on_breach=sla["REASSIGN_ON_BREACH"],
        )

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.day_start, self.time_zone),
            datetime.combine(day, self.day_end, self.time_zone),
        )


def add_business_hours(start: datetime, hours: float, policy: SlaPolicy) -> datetime:
    """The moment `hours` of working time after `start` have passed."""
    remaining = timedelta(hours=hours)
    moment = start.astimezone(policy.time_zone)
    day = moment.date()
    for _ in range(_MAX_DAYS):
        if policy.is_workday(day):
            opens, closes = policy._window(day)
            begin = max(moment, opens)
            if begin < closes:
                if begin + remaining <= closes:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
        moment = datetime.combine(day, time.min, policy.time_zone)
    raise ValueError("The SLA policy has no working hours.")


def business_time_between(
    start: datetime, end: datetime, policy: SlaPolicy
) -> timedelta:
    """Working time from `start` to `end` (zero when end is earlier)."""
    total = timedelta()
    start = start.astimezone(policy.time_zone)
    end = end.astimezone(policy.time_zone)
    day = start.date()
    while day <= end.date():
        if policy.is_workday(day):
            opens, closes = policy._window(day)
            begin, finish = max(start, opens), min(end, closes)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return total
