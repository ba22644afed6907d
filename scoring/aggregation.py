"""Interaction logs folded into the engine's activity facts, many leads at
a time: in SQL on PostgreSQL, in Python elsewhere, with the same result."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from leads.models import Interaction

from . import engine

_SQL = """
    SELECT lead_id, kind,
           sum(quantity)::bigint,
           sum(quantity * power(0.5, least(greatest(
               date_part('epoch', %(now)s - occurred_at), 0) / %(half_life)s,
               1000))),
           sum(quantity * power(0.5, least(greatest(
               date_part('epoch', %(now)s - occurred_at), 0) / %(recent)s,
               1000))),
           campaign_id, subject,
           floor(date_part('epoch', occurred_at) / %(window)s)::bigint
    -- date_part() gives float8 where extract() gives numeric, several times
    -- slower over millions of rows. Past a thousand half-lives a weight is
    -- zero in any precision; capping the exponent keeps power() from
    -- underflowing into an error.
    FROM {table}
    WHERE lead_id = ANY(%(ids)s)
    GROUP BY lead_id, kind, campaign_id, subject, 8
"""


def aggregate_for_leads(
    lead_ids: Sequence[int], rules: engine.Rules, now: datetime
) -> dict[int, list[engine.Activity]]:
    if connection.vendor == "postgresql":
        return _aggregate_sql(lead_ids, rules, now)
    return _aggregate_python(lead_ids, rules, now)


def _aggregate_sql(lead_ids, rules: engine.Rules, now: datetime):
    day = 86400.0
    params = {
        "ids": list(lead_ids),
        "now": now,
        "window": max(rules.window_days, 1) * day,
        "half_life": rules.half_life_days * day,
        "recent": rules.temperature_half_life_days * day,
    }
    facts: dict[int, list[engine.Activity]] = defaultdict(list)
    make = engine.Activity._make
    with connection.cursor() as cursor:
        cursor.execute(_SQL.format(table=Interaction._meta.db_table), params)
        # Ten rows a lead: fetched at once from the driver's own cursor,
        # whose rows already come in the Activity's field order.
        rows = cursor.cursor.fetchall()
    for row in rows:
        facts[row[0]].append(make(row[1:]))
    return facts


def _aggregate_python(lead_ids, rules: engine.Rules, now: datetime):
    events: dict[int, list[tuple]] = defaultdict(list)
    rows = Interaction.objects.filter(lead_id__in=lead_ids).values_list(
        "lead_id", "kind", "quantity", "occurred_at", "campaign_id", "subject"
    )
    for lead_id, *event in rows:
        events[lead_id].append(tuple(event))
    return {
        lead_id: engine.aggregate(items, now=now, rules=rules)
        for lead_id, items in events.items()
    }
