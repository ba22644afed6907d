"""Assigning MQLs to sales reps: rules first, then round robin by capacity.

Every assignment writes an Assignment row, sets the SLA deadlines and, after
commit, notifies the rep once. Concurrent assignments to one team are
serialised by a lock on the team's row, so capacity and turn order hold
under any number of workers.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from leadcrm.queue import enqueue

from .models import (
    Assignment,
    AssignmentMethod,
    AssignmentRule,
    Lead,
    LeadStatus,
    Level,
    RuleField,
    Team,
    TeamMember,
)
from .normalize import fold_for_search
from .sla import SlaPolicy, add_business_hours

logger = logging.getLogger(__name__)

SALES_LEVELS = (Level.MQL, Level.SQL)
# The leads that count against a rep's capacity.
OPEN_WORK = Q(status=LeadStatus.OPEN, level__in=SALES_LEVELS)


def leads_reached_sales(
    *, lead_ids: Sequence[int], at: datetime, mql_at_written: bool = False
) -> None:
    """Start the hand-off of leads that just left IQL for MQL or SQL.

    Called inside the transaction that moved them; assignment runs in a
    task after commit, so scoring never waits on it.
    """
    if not lead_ids:
        return
    if not mql_at_written:
        Lead.objects.filter(pk__in=lead_ids).update(mql_at=at)
    ids = list(lead_ids)
    logger.info("%s lead(s) became MQL, assignment queued", len(ids))
    transaction.on_commit(lambda: _enqueue_assignment(ids))


def _enqueue_assignment(lead_ids: list[int]) -> None:
    from .tasks import assign_leads

    # A failed publish leaves the leads unowned; the hand-off sweep finds
    # them again.
    enqueue(assign_leads, lead_ids)


@dataclass(frozen=True)
class Route:
    team: Team
    rule: AssignmentRule | None = None


def route_for(lead: Lead, rules: Iterable[AssignmentRule]) -> Route | None:
    """The first active rule that matches the lead, by priority; without one,
    the only team when there is exactly one."""
    for rule in rules:
        if rule.is_active and rule_matches(rule, lead):
            return Route(team=rule.team, rule=rule)
    teams = list(Team.objects.all()[:2])
    return Route(team=teams[0]) if len(teams) == 1 else None


def rule_matches(rule: AssignmentRule, lead: Lead) -> bool:
    if rule.field == RuleField.ANY:
        return True
    if rule.field == RuleField.CAMPAIGN:
        return rule.campaign_id is not None and rule.campaign_id in (
            lead.first_touch_campaign_id,
            lead.last_touch_campaign_id,
        )
    wanted = {fold_for_search(v) for v in rule.values.split(",") if v.strip()}
    return fold_for_search(getattr(lead, rule.field, "") or "") in wanted


def open_load(user_ids: Iterable[int]) -> dict[int, int]:
    """Open sales leads held by each rep, in one query."""
    rows = (
        Lead.objects.filter(OPEN_WORK, owner_id__in=list(user_ids))
        .values("owner_id")
        .annotate(n=Count("pk"))
    )
    return {row["owner_id"]: row["n"] for row in rows}


def next_rep(team: Team, *, exclude: Iterable[int] = ()) -> TeamMember | None:
    """The active member whose turn it is and who has room, or None.

    A member invited but without a password yet is passed over: a lead's
    SLA would run out while nobody can log in to accept it.

    The caller holds the team's row lock: the load counted here cannot
    change before the chosen rep's assignment commits.
    """
    members = list(
        TeamMember.objects.filter(team=team, is_active=True, user__is_active=True)
        .exclude(user_id__in=list(exclude))
        .exclude(user__password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .select_related("user")
    )
    load = open_load(m.user_id for m in members)
    # Longest without a lead goes first; a rep never assigned, first of all.
    members.sort(
        key=lambda m: (m.last_assigned_at is not None, m.last_assigned_at, m.pk)
    )
    for member in members:
        if load.get(member.user_id, 0) < member.capacity:
            return member
    return None


def _lock_team(team_id: int) -> Team:
    return Team.objects.select_for_update().get(pk=team_id)


@transaction.atomic
def lead_assign(*, lead_id: int, now: datetime | None = None) -> Assignment | None:
    """Give an MQL without an owner to a rep. Safe to run twice: a lead that
    has an owner (or is no longer open sales work) is left alone."""
    lead = Lead.objects.select_for_update().filter(pk=lead_id).first()
    if lead is None or lead.owner_id or not _is_open_work(lead):
        return None

    route = route_for(lead, AssignmentRule.objects.select_related("team"))
    if route is None:
        logger.info("Lead %s matches no assignment rule and no team", lead.pk)
        return None
    team = _lock_team(route.team.pk)
    # Read under the team's lock, so turns are stamped in the order they
    # were taken: round robin sorts by these stamps.
    now = now or timezone.now()

    member = None
    rule_rep = route.rule.rep_id if route.rule else None
    if rule_rep:
        member = TeamMember.objects.filter(
            team=team, user_id=rule_rep, is_active=True
        ).first()
        if member and open_load([rule_rep]).get(rule_rep, 0) >= member.capacity:
            member = None
    member = member or next_rep(team)
    if member is None:
        return _pool(lead, team)

    method = AssignmentMethod.RULE if route.rule else AssignmentMethod.ROUND_ROBIN
    return give(lead, member.user, team, method=method, rule=route.rule, now=now)


def _is_open_work(lead: Lead) -> bool:
    return lead.status == LeadStatus.OPEN and lead.level in SALES_LEVELS


def _pool(lead: Lead, team: Team) -> None:
    """Every rep is full: the lead waits with the team, unowned, and the
    sweep offers it again when room frees up."""
    first_time = lead.team_id != team.pk
    lead.team = team
    lead.save(update_fields=["team", "updated_at"])
    logger.warning(
        "Lead %s waits in team %s's pool: every rep is full", lead.pk, team.pk
    )
    if first_time and team.manager_id:
        from .notifications import notify_pooled

        transaction.on_commit(lambda: notify_pooled(lead_id=lead.pk, team_id=team.pk))
    return None


def give(
    lead: Lead,
    rep,
    team: Team,
    *,
    method: str,
    rule: AssignmentRule | None = None,
    by=None,
    now: datetime,
) -> Assignment:
    """Make `rep` the lead's owner and start the SLA clock. The caller holds
    the lead's row lock and the team's."""
    policy = SlaPolicy.from_settings()
    lead.owner = rep
    lead.team = team
    lead.assigned_at = now
    lead.accepted_at = None
    lead.accept_due_at = add_business_hours(now, policy.accept_hours, policy)
    lead.contact_due_at = (
        None
        if lead.first_contacted_at
        else add_business_hours(now, policy.contact_hours, policy)
    )
    lead.accept_escalated_at = None
    lead.contact_escalated_at = None
    lead.save(
        update_fields=[
            "owner",
            "team",
            "assigned_at",
            "accepted_at",
            "accept_due_at",
            "contact_due_at",
            "accept_escalated_at",
            "contact_escalated_at",
            "updated_at",
        ]
    )
    TeamMember.objects.filter(user=rep).update(last_assigned_at=now)
    assignment = Assignment.objects.create(
        lead=lead,
        rep=rep,
        team=team,
        method=method,
        rule=rule,
        assigned_by=by,
        created_at=now,
    )
    logger.info(
        "Lead %s assigned to user %s (team %s, %s)", lead.pk, rep.pk, team.pk, method
    )
    transaction.on_commit(lambda: _enqueue_notification(assignment.pk))
    return assignment


def _enqueue_notification(assignment_id: int) -> None:
    from .tasks import notify_assignment

    enqueue(notify_assignment, assignment_id)


def lead_reassign(
    *, lead_ids: Sequence[int], to_user_id: int, by, now: datetime | None = None
) -> int:
    """A manager gives leads of their team to one of its reps, singly or in
    bulk. Capacity is the manager's call here. Returns how many moved."""
    if not by.has_perm("leads.assign_lead"):
        raise PermissionDenied(_("You may not assign leads."))
    now = now or timezone.now()
    member = (
        TeamMember.objects.filter(user_id=to_user_id, user__is_active=True)
        .select_related("team", "user")
        .first()
    )
    if member is None:
        raise ValidationError({"rep": _("Choose a rep of a team.")})
    if not by.is_superuser and member.team.manager_id != by.pk:
        raise ValidationError({"rep": _("Choose a rep of a team you manage.")})

    moved = 0
    with transaction.atomic():
        # Leads first, in primary key order, then the team: the order every
        # assignment takes its locks in, so none deadlock.
        leads = list(
            Lead.objects.visible_to(by)
            .select_for_update(of=("self",))
            .filter(pk__in=list(lead_ids))
            .order_by("pk")
        )
        team = _lock_team(member.team_id)
        for lead in leads:
            if lead.owner_id == member.user_id or lead.status != LeadStatus.OPEN:
                continue
            give(
                lead, member.user, team, method=AssignmentMethod.MANUAL, by=by, now=now
            )
            moved += 1
    return moved


def lead_assign_many(*, lead_ids: Iterable[int]) -> int:
    """Assign each lead in turn; returns how many got a rep. Nothing to do
    before the first team exists (marketing-only installations)."""
    if not Team.objects.exists():
        return 0
    return sum(1 for lead_id in lead_ids if lead_assign(lead_id=lead_id))


def assign_waiting(*, limit: int = 500) -> int:
    """Assign MQLs still without an owner: a lost task, a rule added later,
    a rep with room again. Returns how many were assigned."""
    waiting = list(
        Lead.objects.filter(OPEN_WORK, owner__isnull=True, mql_at__isnull=False)
        .order_by("mql_at")
        .values_list("pk", flat=True)[:limit]
    )
    return lead_assign_many(lead_ids=waiting)
