"""Reads shared by the pages, the API and the admin.

Every read of leads starts from `Lead.objects.visible_to(user)`, so a lead a
user may not see is never listed, searched or shown.
"""

import re

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from .models import Bant, Interaction, Lead, LeadQuerySet, LevelChange
from .normalize import fold_for_search, normalize_phone

# Digits with the separators people type in phone numbers, long enough not
# to be a year or a house number.
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]{8,}$")

TIMELINE_LIMIT = 100


def lead_list(*, user) -> LeadQuerySet:
    """The leads a user may see, in the list's default order."""
    return Lead.objects.visible_to(user)


def lead_search(queryset: QuerySet[Lead], query: str) -> QuerySet[Lead]:
    """Leads whose name, email, phone or company match every word of `query`.

    Matching ignores case and diacritics ("nguyen" finds "Nguyễn"). A query
    that reads as a phone number also finds the lead with that number in any
    notation ("0912 345 678" finds +84912345678).
    """
    terms = fold_for_search(query).split()
    if not terms:
        return queryset

    match = Q()
    for term in terms:
        match &= Q(search_text__icontains=term)
    phone = _as_phone(query)
    if phone:
        match |= Q(phone=phone)
    return queryset.filter(match)


def _as_phone(query: str) -> str:
    query = query.strip()
    if not _PHONE_LIKE.match(query):
        return ""
    try:
        return normalize_phone(query)
    except ValidationError:
        return ""


def lead_sources(queryset: QuerySet[Lead]) -> list[str]:
    """The distinct sources among `queryset`, for a filter's choices."""
    return list(
        queryset.exclude(source="")
        .order_by("source")
        .values_list("source", flat=True)
        .distinct()[:200]
    )


def lead_detail(*, user, pk: int) -> Lead:
    """One lead with its campaigns, or 404 when the user may not see it."""
    queryset = lead_list(user=user).select_related(
        "first_touch_campaign", "last_touch_campaign"
    )
    return get_object_or_404(queryset, pk=pk)


def lead_timeline(
    *, lead: Lead, limit: int = TIMELINE_LIMIT
) -> tuple[list[Interaction], int]:
    """The latest `limit` interactions of a lead and how many it has in all."""
    interactions = lead.interactions.select_related("campaign").order_by(
        "-occurred_at", "-id"
    )
    latest = list(interactions[:limit])
    total = len(latest) if len(latest) < limit else interactions.count()
    return latest, total


def lead_level_history(*, lead: Lead) -> list[LevelChange]:
    return list(
        lead.level_changes.select_related("changed_by").order_by("-created_at", "-id")
    )


def lead_bant(*, lead: Lead) -> dict[str, Bant]:
    """What is known of each BANT criterion, by criterion; unknown ones are
    missing."""
    return {
        fact.criterion: fact
        for fact in Bant.objects.filter(lead=lead).select_related("confirmed_by")
    }
