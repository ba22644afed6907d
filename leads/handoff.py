"""The rep's side of the hand-off: accept, reject, first contact, and the
SLA escalation that runs periodically."""

import logging
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .assignment import SALES_LEVELS, _lock_team, give, next_rep
from .models import (
    AssignmentMethod,
    Lead,
    LeadStatus,
    NotificationKind,
    Opportunity,
    ReasonCode,
    TeamMember,
)

# lead_mark_contacted lives with the other lead writes; it is part of the
# hand-off's API too.
from .services import lead_disqualify, lead_mark_contacted, lead_recycle
from .sla import SlaPolicy

logger = logging.getLogger(__name__)

__all__ = [
    "lead_accept",
    "lead_mark_contacted",
    "lead_reject",
    "sla_escalate",
]

REJECT_REASONS = (
    ReasonCode.NOT_A_FIT,
    ReasonCode.NO_BUDGET,
    ReasonCode.NO_AUTHORITY,
    ReasonCode.DUPLICATE,
    ReasonCode.SPAM,
    ReasonCode.UNREACHABLE,
    ReasonCode.OTHER,
)


class RejectOutcome(models.TextChoices):
    RECYCLE = "recycle", gettext_lazy("Back to marketing's nurture")
    DISQUALIFY = "disqualify", gettext_lazy("Disqualify")


def _locked(lead_id: int) -> Lead:
    return Lead.objects.select_for_update().get(pk=lead_id)


def _in_pool_of(lead: Lead, user) -> bool:
    return (
        lead.owner_id is None
        and lead.team_id is not None
        and TeamMember.objects.filter(
            user=user, team_id=lead.team_id, team__uses_pool=True, is_active=True
        ).exists()
    )


@transaction.atomic
def lead_accept(*, lead_id: int, by, now: datetime | None = None) -> Lead:
    """The rep takes the lead on: the accept SLA stops, speed to lead is
    recorded. A lead in the team's pool is claimed by accepting it."""
    now = now or timezone.now()
    lead = _locked(lead_id)
    if lead.status != LeadStatus.OPEN or lead.level not in SALES_LEVELS:
        raise ValidationError(_("Only an open MQL or SQL can be accepted."))

    if lead.owner_id is None and _in_pool_of(lead, by):
        team = _lock_team(lead.team_id)
        give(lead, by, team, method=AssignmentMethod.CLAIM, by=by, now=now)
    elif lead.owner_id != by.pk:
        raise PermissionDenied(_("Only the lead's owner can accept it."))
    elif lead.accepted_at:
        raise ValidationError(_("The lead is accepted already."))

    lead.accepted_at = now
    lead.time_to_accept = now - (lead.mql_at or lead.assigned_at or now)
    lead.save(update_fields=["accepted_at", "time_to_accept", "updated_at"])
    logger.info("Lead %s accepted by user %s", lead.pk, by.pk)
    return lead


@transaction.atomic
def lead_reject(
    *, lead_id: int, by, reason_code: str, outcome: str, note: str = ""
) -> Lead:
    """The rep hands the lead back with a coded reason: to marketing's
    nurture (recycled to IQL, with history) or disqualified."""
    if reason_code not in REJECT_REASONS:
        raise ValidationError({"reason_code": _("Choose a reason.")})
    if outcome not in RejectOutcome.values:
        raise ValidationError({"outcome": _("Choose what happens to the lead.")})
    lead = _locked(lead_id)
    if lead.owner_id != by.pk and not _in_pool_of(lead, by):
        raise PermissionDenied(_("Only the lead's owner can reject it."))
    if (
        lead.status != LeadStatus.OPEN
        or lead.level not in SALES_LEVELS
        or lead.accepted_at is not None
        or Opportunity.objects.filter(lead_id=lead.pk).exists()
    ):
        # Past the inbox a lead is recycled or disqualified from its page,
        # where its deal and history stay with the team.
        raise ValidationError(
            _("Only an MQL or SQL waiting to be accepted can be rejected.")
        )

    if outcome == RejectOutcome.RECYCLE:
        lead_recycle(lead_id=lead.pk, by=by, reason_code=reason_code, note=note)
    else:
        lead_disqualify(lead_id=lead.pk, by=by, reason_code=reason_code, note=note)

    # Back with marketing: no owner and no SLA clock until it earns MQL again.
    Lead.objects.filter(pk=lead.pk).update(
        owner=None,
        team=None,
        assigned_at=None,
        accepted_at=None,
        accept_due_at=None,
        contact_due_at=None,
    )
    logger.info(
        "Lead %s rejected by user %s (%s, %s)", lead.pk, by.pk, reason_code, outcome
    )
    return Lead.objects.get(pk=lead.pk)


def sla_escalate(*, now: datetime | None = None, limit: int = 500) -> int:
    """Escalate every breach not escalated yet to the team's manager, once;
    with REASSIGN_ON_BREACH a lead not accepted moves to the next rep.
    Returns how many breaches were escalated."""
    now = now or timezone.now()
    policy = SlaPolicy.from_settings()
    open_owned = Lead.objects.filter(
        status=LeadStatus.OPEN, level__in=SALES_LEVELS, owner__isnull=False
    )
    accept = open_owned.filter(
        accepted_at__isnull=True,
        accept_due_at__lt=now,
        accept_escalated_at__isnull=True,
    ).values_list("pk", flat=True)[:limit]
    contact = open_owned.filter(
        first_contacted_at__isnull=True,
        contact_due_at__lt=now,
        contact_escalated_at__isnull=True,
    ).values_list("pk", flat=True)[:limit]

    done = 0
    for lead_id in list(accept):
        done += _escalate(lead_id, NotificationKind.ACCEPT_BREACH, policy, now)
    for lead_id in list(contact):
        done += _escalate(lead_id, NotificationKind.CONTACT_BREACH, policy, now)
    return done


def _escalate(lead_id: int, kind: str, policy: SlaPolicy, now: datetime) -> int:
    from .notifications import notify_breach

    accept = kind == NotificationKind.ACCEPT_BREACH
    flag = "accept_escalated_at" if accept else "contact_escalated_at"
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        # Checked again under the lock: another sweep may have been first.
        if getattr(lead, flag) is not None or lead.owner_id is None:
            return 0
        setattr(lead, flag, now)
        lead.save(update_fields=[flag, "updated_at"])
        logger.info(
            "Lead %s breached its %s SLA", lead.pk, "accept" if accept else "contact"
        )
        transaction.on_commit(
            lambda: notify_breach(
                lead=Lead.objects.select_related("team__manager").get(pk=lead_id),
                kind=kind,
            )
        )

        if accept and policy.reassign_on_breach and lead.team_id:
            team = _lock_team(lead.team_id)
            member = next_rep(team, exclude=[lead.owner_id])
            if member is not None:
                give(
                    lead, member.user, team, method=AssignmentMethod.ESCALATION, now=now
                )
    return 1
