"""Reads shared by the pages, the API and the admin.

Every read of leads starts from `Lead.objects.visible_to(user)`, so a lead a
user may not see is never listed, searched or shown.
"""

import re
from collections.abc import Callable, Mapping

from django.core.exceptions import ValidationError
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from .models import Bant, Interaction, Lead, LeadQuerySet, LevelChange, Opportunity
from .normalize import fold_for_search, normalize_phone, storable_text

# Digits with the separators people type in phone numbers, long enough not
# to be a year or a house number.
_PHONE_LIKE = re.compile(r"^\(?\+?[\d\s().\-]{8,}$")

TIMELINE_LIMIT = 100

# Reads a rule set version's rules as {rule key: code}. Scoring registers
# it when the apps are ready: `leads` never imports scoring.
RuleCodes = Callable[[int], Mapping[str, tuple[str, ...]]]
_rule_codes: RuleCodes | None = None


def rule_codes_register(func: RuleCodes) -> None:
    global _rule_codes
    _rule_codes = func


def lead_score_lines(*, lead: Lead) -> list[dict]:
    """The lead's score breakdown for a page, each line whose label its rule
    set wrote given that rule's `code` to be put in the reader's language.

    Lines hold English words (a worker scored them) and a rule key; the rule
    set version that scored them never changes, so its rules still say what
    each key meant. Other lines (a marketer's own label, a rule gone) are
    shown as stored.
    """
    lines = lead.score_breakdown or []
    if not lines or not lead.score_version or _rule_codes is None:
        return lines
    codes = _rule_codes(lead.score_version)
    return [
        {**line, "code": codes[line["rule"]]} if line.get("rule") in codes else line
        for line in lines
    ]


def lead_list(*, user) -> LeadQuerySet:
    """The leads a user may see, in the list's default order."""
    return Lead.objects.visible_to(user)


def lead_search(queryset: QuerySet[Lead], query: str) -> QuerySet[Lead]:
    """Leads whose name, email, phone or company match every word of `query`.

    Matching ignores case and diacritics ("nguyen" finds "Nguyễn"). A query
    that reads as a phone number also finds the lead with that number in any
    notation ("0912 345 678" finds +84912345678).
    """
    # PostgreSQL refuses NUL in a string: a query never holds one.
    query = storable_text(query)
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
        "first_touch_campaign", "last_touch_campaign", "owner", "team"
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


# The sales hand-off's pages. Each is one queryset with its related rows
# joined, so a page costs the same few queries whatever the number of leads.

HANDOFF_RELATED = ("owner", "team")


def _sales_work(user) -> QuerySet[Lead]:
    from .assignment import OPEN_WORK

    return (
        Lead.objects.visible_to(user).filter(OPEN_WORK).select_related(*HANDOFF_RELATED)
    )


def is_manager(user) -> bool:
    return user.is_superuser or user.has_perm("leads.assign_lead")


def mql_inbox(*, user) -> QuerySet[Lead]:
    """Leads waiting for the user to accept: their own, then the pool of
    their team; the closest deadline first."""
    from .models import TeamMember

    pool_teams = TeamMember.objects.filter(user=user, team__uses_pool=True)
    pool = Q(owner__isnull=True, team__any_of=pool_teams.values("team_id"))
    return (
        _sales_work(user)
        .filter(Q(owner=user) | pool, accepted_at__isnull=True)
        .order_by(F("accept_due_at").asc(nulls_last=True), "mql_at", "pk")
    )


# Hot before warm before cold, within one score.
TEMPERATURE_RANK = Case(
    When(temperature="hot", then=Value(0)),
    When(temperature="warm", then=Value(1)),
    default=Value(2),
)


def sql_queue(*, user) -> QuerySet[Lead]:
    """Accepted sales-ready leads not yet converted, best first: by score,
    then temperature. A rep sees their own; a manager their teams'."""
    # NOT EXISTS rather than a left join to opportunities: PostgreSQL sees
    # an anti-join and counts its rows right, where "opportunity.id IS NULL"
    # was taken for almost no row and planned as such.
    converted = Opportunity.objects.filter(lead=OuterRef("pk"))
    queue = _sales_work(user).filter(~Exists(converted), accepted_at__isnull=False)
    if not is_manager(user):
        queue = queue.filter(owner=user)
    elif not user.is_superuser:
        # The team's queue, said outright: visibility alone is an OR that
        # no index serves, where the team leads to one ordered by score.
        from .models import Team

        managed = list(Team.objects.filter(manager=user).values_list("pk", flat=True))
        queue = queue.filter(team__in=managed)
    return queue.order_by("-score", TEMPERATURE_RANK, "mql_at", "pk")


def team_board(*, user) -> QuerySet[Lead]:
    """A manager's view of the hand-off: every open sales lead of their
    teams not yet contacted, unowned and overdue first."""
    return _sales_work(user).order_by(
        F("owner_id").asc(nulls_first=True),
        F("accept_due_at").asc(nulls_last=True),
        "pk",
    )


def assignable_reps(*, user) -> QuerySet:
    """Reps a manager may give leads to: members of the teams they manage."""
    from .models import TeamMember

    members = TeamMember.objects.filter(user__is_active=True).select_related(
        "user", "team"
    )
    if not user.is_superuser:
        members = members.filter(team__manager=user)
    return members.order_by("team__name", "user__username")


def breached_q(now) -> Q:
    """Accept or first-contact deadline missed (or met late)."""
    accept = Q(accept_due_at__lt=now, accepted_at__isnull=True) | Q(
        accepted_at__gt=F("accept_due_at")
    )
    contact = Q(contact_due_at__lt=now, first_contacted_at__isnull=True) | Q(
        first_contacted_at__gt=F("contact_due_at")
    )
    return accept | contact
