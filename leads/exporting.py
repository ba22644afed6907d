"""Export leads as CSV, streamed row by row."""

import csv
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from django.db.models import QuerySet
from django.utils import timezone

from .models import Lead

logger = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "external_id",
    "email",
    "phone",
    "full_name",
    "level",
    "score",
    "engagement_score",
    "fit_score",
    "temperature",
    "company",
    "job_title",
    "industry",
    "city",
    "country",
    "source",
    "origin",
    "email_consent",
    "known_outcome",
    "last_interaction_at",
    "created_at",
)
# Rows fetched from the database at a time: memory stays flat however many
# leads there are.
CHUNK_SIZE = 2000
# Spreadsheets read a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def lead_export_queryset(
    *,
    user: Any = None,
    level: str | None = None,
    temperature: str | None = None,
) -> QuerySet[Lead]:
    """The leads an export holds: what `user` may see, or all for an operator.

    `user` None means the command line's full export; every export made for
    a person passes that person, so visibility stays decided in one place.
    """
    leads = Lead.objects.all() if user is None else Lead.objects.visible_to(user)
    if level:
        leads = leads.filter(level=level)
    if temperature:
        leads = leads.filter(temperature=temperature)
    return leads.order_by("pk")


def lead_export_csv(*, leads: QuerySet[Lead], out: TextIO) -> int:
    """Write `leads` as CSV to `out`, header first; returns the rows written."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)

    count = 0
    for row in _rows(leads):
        writer.writerow(row)
        count += 1

    logger.info("Leads exported: %s", count)
    return count


def _rows(leads: QuerySet[Lead]) -> Iterator[list[object]]:
    values = leads.values_list(*EXPORT_COLUMNS).iterator(chunk_size=CHUNK_SIZE)
    for row in values:
        yield [_cell(value) for value in row]


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        # The team's own time zone, as on every page and in the API.
        return timezone.localtime(value).isoformat()
    # Lead data comes from public forms: a spreadsheet must not run a name
    # like "=HYPERLINK(...)" as a formula. A normalised phone number
    # (+84...) is digits only and stays as it is.
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_PREFIXES)
        and not value[1:].isdigit()
    ):
        return "'" + value
    return value
