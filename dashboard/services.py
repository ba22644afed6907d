"""Keeping the dashboard's daily summary in step with the leads."""

import logging
import zoneinfo
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from leads.models import (
    Lead,
    Level,
    LevelChange,
    Opportunity,
    OpportunityStage,
    Temperature,
)

from .models import LeadDaySummary, SummaryState

logger = logging.getLogger(__name__)

# Changes committed by transactions that started before the last refresh
# carry earlier times; looking back this far catches them.
OVERLAP = timedelta(minutes=5)
# Past this many changed days one pass over every lead is cheaper than many
# day ranges.
MAX_INCREMENTAL_DAYS = 60


def summary_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The instants a local day starts and the next one starts."""
    zone = summary_zone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def summary_refresh(*, full: bool = False) -> int:
    """Recount the summary rows of every day whose leads changed since the
    last refresh (all days with `full`); return how many days were redone.

    A day is always recounted whole, from the leads themselves, so running
    this twice or concurrently with lead changes only costs time.
    """
    with transaction.atomic():
        # One refresh at a time: a second one waits, then finds little to do.
        state, _created = SummaryState.objects.select_for_update().get_or_create(pk=1)
        started = timezone.now()
        days = (
            None
            if full or state.refreshed_through is None
            else (_changed_days(since=state.refreshed_through - OVERLAP))
        )
        if days is not None and len(days) > MAX_INCREMENTAL_DAYS:
            days = None

        if days is None:
            LeadDaySummary.objects.all().delete()
            rows = _summarise(Lead.objects.all())
        elif days:
            LeadDaySummary.objects.filter(day__in=days).delete()
            rows = _summarise(Lead.objects.filter(_created_on(days)))
        else:
            rows = []
        LeadDaySummary.objects.bulk_create(rows, batch_size=2000)

        state.refreshed_through = started
        state.refreshed_at = timezone.now()
        state.save()

    redone = len({row.day for row in rows}) if days is None else len(days)
    logger.info("Dashboard summary refreshed: %s days, %s rows", redone, len(rows))
    return redone


def _changed_days(*, since: datetime) -> set[date]:
    """Creation days of leads that changed since `since`: edited, rescored
    (the bulk rescore sets scored_at only) or with a changed opportunity."""
    local_day = TruncDate("created_at", tzinfo=summary_zone())
    changed = Lead.objects.filter(Q(updated_at__gte=since) | Q(scored_at__gte=since))
    days = set(changed.annotate(day=local_day).values_list("day", flat=True).distinct())
    opportunity_leads = Opportunity.objects.filter(updated_at__gte=since).values(
        "lead_id"
    )
    days.update(
        Lead.objects.filter(pk__in=opportunity_leads)
        .annotate(day=local_day)
        .values_list("day", flat=True)
        .distinct()
    )
    return days


def _created_on(days: set[date]) -> Q:
    # Ranges on created_at use its index; a local-date expression would not.
    match = Q(pk__in=[])
    for day in days:
        start, end = day_bounds(day)
        match |= Q(created_at__gte=start, created_at__lt=end)
    return match


def _summarise(leads: QuerySet[Lead]) -> list[LeadDaySummary]:
    """One GROUP BY over `leads`: counts per local day, source and touch
    campaigns. A lead reached a level when its level is at or past it, its
    history shows it, or it went further (an opportunity implies SQL)."""
    history = LevelChange.objects.filter(lead=OuterRef("pk"))
    opportunity = Opportunity.objects.filter(lead=OuterRef("pk"))
    facts = leads.annotate(
        day=TruncDate("created_at", tzinfo=summary_zone()),
        was_mql=Exists(history.filter(to_level__in=[Level.MQL, Level.SQL])),
        was_sql=Exists(history.filter(to_level=Level.SQL)),
        has_opportunity=Exists(opportunity),
        has_won=Exists(opportunity.filter(stage=OpportunityStage.WON)),
    )
    reached_sql = Q(level=Level.SQL) | Q(was_sql=True) | Q(has_opportunity=True)
    reached_mql = Q(level=Level.MQL) | Q(was_mql=True) | reached_sql
    groups = (
        facts.order_by()
        .values("day", "source", "first_touch_campaign_id", "last_touch_campaign_id")
        .annotate(
            n_leads=Count("pk"),
            n_mql=Count("pk", filter=reached_mql),
            n_sql=Count("pk", filter=reached_sql),
            n_opportunities=Count("pk", filter=Q(has_opportunity=True)),
            n_won=Count("pk", filter=Q(has_won=True)),
            n_at_iql=Count("pk", filter=Q(level=Level.IQL)),
            n_at_mql=Count("pk", filter=Q(level=Level.MQL)),
            n_at_sql=Count("pk", filter=Q(level=Level.SQL)),
            n_cold=Count("pk", filter=Q(temperature=Temperature.COLD)),
            n_warm=Count("pk", filter=Q(temperature=Temperature.WARM)),
            n_hot=Count("pk", filter=Q(temperature=Temperature.HOT)),
        )
    )
    return [
        LeadDaySummary(
            day=group["day"],
            source=group["source"],
            first_campaign_id=group["first_touch_campaign_id"],
            last_campaign_id=group["last_touch_campaign_id"],
            leads=group["n_leads"],
            reached_mql=group["n_mql"],
            reached_sql=group["n_sql"],
            opportunities=group["n_opportunities"],
            won=group["n_won"],
            at_iql=group["n_at_iql"],
            at_mql=group["n_at_mql"],
            at_sql=group["n_at_sql"],
            cold=group["n_cold"],
            warm=group["n_warm"],
            hot=group["n_hot"],
        )
        for group in groups
    ]
