"""Recompute lead scores from their data and interaction log.

A score is never added to: each recompute reads the lead's profile and its
whole interaction log, so running it twice, or in any order, gives the same
result.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from leads.models import Interaction, Lead, LevelChange
from leads.services import lead_set_level

from . import engine
from .rules import active_rules

logger = logging.getLogger(__name__)

PROFILE_ATTRS = (
    "email",
    "phone",
    "full_name",
    "company",
    "job_title",
    "industry",
    "city",
    "country",
)
SCORE_FIELDS = [
    "score",
    "engagement_score",
    "fit_score",
    "temperature",
    "score_breakdown",
    "scored_at",
    "score_stale",
    "level",
]


def _profile(lead: Lead) -> dict[str, str]:
    return {name: getattr(lead, name) for name in PROFILE_ATTRS}


def _apply(lead: Lead, result: engine.ScoreResult, now: datetime) -> None:
    lead.score = result.total
    lead.engagement_score = result.engagement
    lead.fit_score = result.fit
    lead.temperature = result.temperature
    lead.score_breakdown = [asdict(line) for line in result.breakdown]
    lead.scored_at = now
    lead.score_stale = False


def score_recompute(*, lead_id: int, now: datetime | None = None) -> Lead | None:
    """Rescore one lead under its row lock; returns it, or None if gone."""
    rules = active_rules()
    now = now or timezone.now()

    with transaction.atomic():
        lead = Lead.objects.select_for_update().filter(pk=lead_id).first()
        if lead is None:
            return None

        events = Interaction.objects.filter(lead_id=lead_id).values_list(
            "kind", "quantity", "occurred_at"
        )
        activity = engine.aggregate(events, now=now, rules=rules)
        result = engine.score(
            profile=_profile(lead), activity=activity, level=lead.level, rules=rules
        )

        _apply(lead, result, now)
        lead.save(update_fields=[f for f in SCORE_FIELDS if f != "level"])
        if result.level != lead.level:
            lead_set_level(lead=lead, to_level=result.level, rule=result.level_rule)

    return lead


def score_recompute_many(
    *,
    lead_ids: Iterable[int],
    batch_size: int = 500,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rescore many leads in batches: one transaction and a fixed number of
    queries per batch, whatever the batch holds. Returns how many were scored.
    """
    rules = active_rules()
    now = now or timezone.now()
    done = 0

    batch: list[int] = []
    for lead_id in lead_ids:
        batch.append(lead_id)
        if len(batch) >= batch_size:
            done += _rescore_batch(batch, rules, now)
            batch = []
            if progress:
                progress(done)
    if batch:
        done += _rescore_batch(batch, rules, now)
        if progress:
            progress(done)

    return done


def _rescore_batch(lead_ids: Sequence[int], rules: engine.Rules, now: datetime) -> int:
    with transaction.atomic():
        # Locking in primary key order keeps concurrent batches from
        # deadlocking on each other.
        leads = list(
            Lead.objects.select_for_update().filter(pk__in=lead_ids).order_by("pk")
        )
        events: dict[int, list] = defaultdict(list)
        rows = Interaction.objects.filter(lead_id__in=lead_ids).values_list(
            "lead_id", "kind", "quantity", "occurred_at"
        )
        for lead_id, kind, quantity, occurred_at in rows:
            events[lead_id].append((kind, quantity, occurred_at))

        changes = []
        for lead in leads:
            activity = engine.aggregate(events[lead.pk], now=now, rules=rules)
            result = engine.score(
                profile=_profile(lead), activity=activity, level=lead.level, rules=rules
            )
            _apply(lead, result, now)
            if result.level != lead.level:
                changes.append(
                    LevelChange(
                        lead=lead,
                        from_level=lead.level,
                        to_level=result.level,
                        rule=result.level_rule,
                        score=result.total,
                        created_at=now,
                    )
                )
                lead.level = result.level

        Lead.objects.bulk_update(leads, SCORE_FIELDS)
        LevelChange.objects.bulk_create(changes)

    logger.info("Rescored %s leads, %s level changes", len(leads), len(changes))
    return len(leads)


def score_sweep_stale(*, limit: int = 5000) -> int:
    """Rescore leads whose recompute never ran (a lost task, a broker outage)."""
    stale = list(
        Lead.objects.filter(score_stale=True)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not stale:
        return 0
    return score_recompute_many(lead_ids=stale)
