"""Read-only, set-based numbers for the dashboard and campaign results.

Each table is one GROUP BY over the daily summary (or, for speed to lead, one
aggregate over leads), so a page costs the same queries for ten leads or a
million.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _

from campaigns.models import Campaign
from leads.models import Lead

from .models import LeadDaySummary, SummaryState
from .services import day_bounds

FIRST_TOUCH = "first"
LAST_TOUCH = "last"
TOP_CAMPAIGNS = 10
COUNTS = (
    "leads",
    "reached_mql",
    "reached_sql",
    "opportunities",
    "won",
    "at_iql",
    "at_mql",
    "at_sql",
    "cold",
    "warm",
    "hot",
)


@dataclass(frozen=True)
class Filters:
    """What the numbers cover; `start`/`end` are local days, both included,
    and None leaves that end open."""

    start: date | None = None
    end: date | None = None
    source: str = ""
    campaign: Campaign | None = None
    attribution: str = FIRST_TOUCH

    @property
    def campaign_field(self) -> str:
        return "last_campaign" if self.attribution == LAST_TOUCH else "first_campaign"


@dataclass
class Funnel:
    leads: int = 0
    reached_mql: int = 0
    reached_sql: int = 0
    opportunities: int = 0
    won: int = 0

    def steps(self) -> list[dict]:
        """Each level with its count, the rate from the step before and the
        rate from all leads (None where nothing to divide by)."""
        counts = [
            ("iql", _("IQL"), self.leads),
            ("mql", _("MQL"), self.reached_mql),
            ("sql", _("SQL"), self.reached_sql),
            ("opportunity", _("Opportunity"), self.opportunities),
            ("won", _("Won"), self.won),
        ]
        steps = []
        previous = None
        for key, label, count in counts:
            steps.append(
                {
                    "key": key,
                    "label": label,
                    "count": count,
                    "step_rate": _rate(count, previous),
                    "overall_rate": _rate(count, self.leads),
                }
            )
            previous = count
        return steps


@dataclass
class Week:
    start: date
    leads: int = 0
    reached_mql: int = 0
    reached_sql: int = 0
    opportunities: int = 0
    won: int = 0
    at_iql: int = 0
    at_mql: int = 0
    at_sql: int = 0


@dataclass
class Speed:
    """Hours from becoming MQL to acceptance and to first contact."""

    mqls: int = 0
    accepted: int = 0
    contacted: int = 0
    accept_median: float | None = None
    accept_p90: float | None = None
    contact_median: float | None = None
    contact_p90: float | None = None


@dataclass
class Results:
    funnel: Funnel
    weeks: list[Week]
    temperature: dict[str, int] = field(default_factory=dict)


def _rate(count: int, of: int | None) -> float | None:
    if not of:
        return None
    return count / of


def _summary(filters: Filters) -> QuerySet[LeadDaySummary]:
    rows = LeadDaySummary.objects.all()
    if filters.start:
        rows = rows.filter(day__gte=filters.start)
    if filters.end:
        rows = rows.filter(day__lte=filters.end)
    if filters.source:
        rows = rows.filter(source=filters.source)
    if filters.campaign is not None:
        rows = rows.filter(**{filters.campaign_field: filters.campaign})
    return rows.order_by()


def _sums() -> dict:
    return {name: Sum(name) for name in COUNTS}


def week_start(day: date) -> date:
    """Monday of the (ISO) week holding `day`."""
    return day - timedelta(days=day.weekday())


def results(filters: Filters) -> Results:
    """Funnel, weekly counts and temperatures, from one query by day."""
    by_day = _summary(filters).values("day").annotate(**_sums()).order_by("day")
    funnel = Funnel()
    weeks: dict[date, Week] = {}
    temperature = {"cold": 0, "warm": 0, "hot": 0}
    for row in by_day:
        for name in ("leads", "reached_mql", "reached_sql", "opportunities", "won"):
            setattr(funnel, name, getattr(funnel, name) + row[name])
        start = week_start(row["day"])
        week = weeks.setdefault(start, Week(start=start))
        for name in Week.__dataclass_fields__:
            if name != "start":
                setattr(week, name, getattr(week, name) + row[name])
        for name in temperature:
            temperature[name] += row[name]
    return Results(
        funnel=funnel,
        weeks=[weeks[start] for start in sorted(weeks)],
        temperature=temperature,
    )


def top_campaigns(filters: Filters, *, limit: int = TOP_CAMPAIGNS) -> list[dict]:
    """The campaigns that brought most leads under `filters`, by the chosen
    touch, with their funnel counts and budget."""
    name = filters.campaign_field
    rows = (
        _summary(filters)
        .filter(**{f"{name}__isnull": False})
        .values(
            campaign_id=F(f"{name}_id"),
            name=F(f"{name}__name"),
            budget=F(f"{name}__budget"),
            currency=F(f"{name}__currency"),
        )
        .annotate(**_sums())
        .order_by("-leads", "name")[:limit]
    )
    return [
        {
            **row,
            "mql_rate": _rate(row["reached_mql"], row["leads"]),
            "sql_rate": _rate(row["reached_sql"], row["leads"]),
            "cost_per_lead": _cost(row["budget"], row["leads"]),
        }
        for row in rows
    ]


def _cost(budget: Decimal | None, count: int) -> Decimal | None:
    if budget is None or not count:
        return None
    return (budget / count).quantize(Decimal("1"))


def campaign_costs(campaign: Campaign, funnel: Funnel) -> dict:
    return {
        "per_lead": _cost(campaign.budget, funnel.leads),
        "per_sql": _cost(campaign.budget, funnel.reached_sql),
    }


class _Percentile(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=fraction, **extra)


def speed_to_lead(filters: Filters) -> Speed:
    """Median and 90th percentile of MQL → accepted and MQL → first contact,
    in hours, for leads that became MQL within the period (wall time)."""
    leads = Lead.objects.filter(mql_at__isnull=False)
    if filters.start:
        leads = leads.filter(mql_at__gte=day_bounds(filters.start)[0])
    if filters.end:
        leads = leads.filter(mql_at__lt=day_bounds(filters.end)[1])
    if filters.source:
        leads = leads.filter(source=filters.source)
    if filters.campaign is not None:
        touch = "last" if filters.attribution == LAST_TOUCH else "first"
        leads = leads.filter(**{f"{touch}_touch_campaign": filters.campaign})
    leads = leads.order_by()

    if connection.vendor == "postgresql":
        return _speed_in_database(leads)
    return _speed_in_python(leads)


def _speed_in_database(leads: QuerySet[Lead]) -> Speed:
    accept = RawSQL("EXTRACT(EPOCH FROM (accepted_at - mql_at)) / 3600.0", [])
    contact = RawSQL("EXTRACT(EPOCH FROM (first_contacted_at - mql_at)) / 3600.0", [])
    # Every column read is in the lead_mql_speed index ("*", not the id):
    # the rows come from the index alone.
    row = leads.aggregate(
        mqls=Count("*"),
        accepted=Count("accepted_at"),
        contacted=Count("first_contacted_at"),
        accept_median=_Percentile(accept, 0.5),
        accept_p90=_Percentile(accept, 0.9),
        contact_median=_Percentile(contact, 0.5),
        contact_p90=_Percentile(contact, 0.9),
    )
    return Speed(**row)


def _speed_in_python(leads: QuerySet[Lead]) -> Speed:
    rows = list(leads.values_list("mql_at", "accepted_at", "first_contacted_at"))
    accept = sorted(
        (accepted - mql).total_seconds() / 3600 for mql, accepted, _ in rows if accepted
    )
    contact = sorted(
        (contacted - mql).total_seconds() / 3600
        for mql, _, contacted in rows
        if contacted
    )
    return Speed(
        mqls=len(rows),
        accepted=len(accept),
        contacted=len(contact),
        accept_median=percentile(accept, 0.5),
        accept_p90=percentile(accept, 0.9),
        contact_median=percentile(contact, 0.5),
        contact_p90=percentile(contact, 0.9),
    )


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's
    percentile_cont, of sorted `values`."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(values) - 1)
    return values[lower] + (values[upper] - values[lower]) * (position - lower)


def summary_sources() -> list[str]:
    """Sources that occur in the summary, for the filter's choices."""
    return list(
        LeadDaySummary.objects.exclude(source="")
        .order_by("source")
        .values_list("source", flat=True)
        .distinct()[:200]
    )


def summary_state() -> SummaryState | None:
    return SummaryState.objects.filter(pk=1).first()
