"""The dashboard's tables as CSV, one table a file, numbers as shown."""

import csv

from django.http import HttpResponse
from django.utils.translation import gettext as _

from leads.models import Temperature

from .selectors import Funnel, Speed, Week


def csv_response(filename: str, header: list[str], rows: list[list]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # A byte-order mark lets Excel read Vietnamese text as UTF-8.
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}"


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def funnel_rows(funnel: Funnel) -> tuple[list[str], list[list]]:
    header = [
        _("Level"),
        _("Leads"),
        # xgettext:no-python-format
        _("% of previous"),
        # xgettext:no-python-format
        _("% of all leads"),
    ]
    rows = [
        [
            step["label"],
            step["count"],
            _percent(step["step_rate"]),
            _percent(step["overall_rate"]),
        ]
        for step in funnel.steps()
    ]
    return header, rows


def weekly_rows(weeks: list[Week]) -> tuple[list[str], list[list]]:
    header = [
        _("Week starting"),
        _("New leads"),
        _("Now IQL"),
        _("Now MQL"),
        _("Now SQL"),
        _("Reached MQL"),
        _("Reached SQL"),
        _("Opportunities"),
        _("Won"),
    ]
    rows = [
        [
            week.start.isoformat(),
            week.leads,
            week.at_iql,
            week.at_mql,
            week.at_sql,
            week.reached_mql,
            week.reached_sql,
            week.opportunities,
            week.won,
        ]
        for week in weeks
    ]
    return header, rows


def speed_rows(speed: Speed) -> tuple[list[str], list[list]]:
    header = [
        _("Measure"),
        _("Leads"),
        _("Median (hours)"),
        _("90th percentile (hours)"),
    ]
    rows = [
        [
            _("MQL to accepted"),
            speed.accepted,
            _hours(speed.accept_median),
            _hours(speed.accept_p90),
        ],
        [
            _("MQL to first contact"),
            speed.contacted,
            _hours(speed.contact_median),
            _hours(speed.contact_p90),
        ],
    ]
    return header, rows


def temperature_rows(temperature: dict[str, int]) -> tuple[list[str], list[list]]:
    header = [_("Temperature"), _("Leads")]
    rows = [[label, temperature[value]] for value, label in Temperature.choices]
    return header, rows


def campaign_rows(campaigns: list[dict]) -> tuple[list[str], list[list]]:
    header = [
        _("Campaign"),
        _("Leads"),
        _("MQL"),
        _("SQL"),
        _("Opportunities"),
        _("Won"),
        _("Cost per lead"),
        _("Currency"),
    ]
    rows = [
        [
            row["name"],
            row["leads"],
            row["reached_mql"],
            row["reached_sql"],
            row["opportunities"],
            row["won"],
            "" if row["cost_per_lead"] is None else row["cost_per_lead"],
            row["currency"],
        ]
        for row in campaigns
    ]
    return header, rows
