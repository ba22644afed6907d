"""Telling people about the hand-off: in the app and by email.

Each function runs after the change it announces has committed. A
notification about an assignment is unique per assignment, person and kind,
so a redelivered task neither adds a row nor sends a second email.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .models import Assignment, Lead, Notification, NotificationKind, Team

logger = logging.getLogger(__name__)


def notify_assignment(*, assignment_id: int) -> Notification | None:
    """Tell the rep of an assignment, once, if it is still theirs."""
    assignment = (
        Assignment.objects.select_related("lead", "rep")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.rep is None:
        return None
    if assignment.lead.owner_id != assignment.rep_id:
        # Reassigned before the task ran: the newer assignment tells its rep.
        return None
    return _notify(
        user=assignment.rep,
        lead=assignment.lead,
        kind=NotificationKind.ASSIGNED,
        assignment=assignment,
    )


def notify_pooled(*, lead_id: int, team_id: int) -> Notification | None:
    team = Team.objects.select_related("manager").filter(pk=team_id).first()
    lead = Lead.objects.filter(pk=lead_id).first()
    if team is None or team.manager is None or lead is None:
        return None
    return _notify(user=team.manager, lead=lead, kind=NotificationKind.POOLED)


def notify_breach(*, lead: Lead, kind: str) -> Notification | None:
    """Escalate an SLA breach to the manager of the lead's team."""
    manager = lead.team.manager if lead.team_id else None
    if manager is None:
        logger.warning("Lead %s breached its SLA and its team has no manager", lead.pk)
        return None
    return _notify(
        user=manager,
        lead=lead,
        kind=kind,
        assignment=lead.assignments.order_by("-created_at", "-id").first(),
    )


def _notify(*, user, lead: Lead, kind: str, assignment=None) -> Notification | None:
    try:
        with transaction.atomic():
            if assignment is None:
                notification = Notification.objects.create(
                    user=user, kind=kind, lead=lead
                )
                created = True
            else:
                notification, created = Notification.objects.get_or_create(
                    user=user, kind=kind, assignment=assignment, defaults={"lead": lead}
                )
    except IntegrityError:
        # A concurrent delivery of the same task won the insert.
        return None
    if not created:
        return notification

    if _send_email(notification):
        Notification.objects.filter(pk=notification.pk).update(
            emailed_at=timezone.now()
        )
    logger.info("Notified user %s: %s on lead %s", user.pk, kind, lead.pk)
    return notification


def _send_email(notification: Notification) -> bool:
    user = notification.user
    if not user.email:
        return False
    lead = notification.lead
    # Emails go out in the site's language: users have no language of their
    # own yet.
    with translation.override(settings.LANGUAGE_CODE):
        subject = f"{notification.get_kind_display()}: {lead.display_name}"
        body = _("%(what)s: %(lead)s\n\nOpen the lead: %(url)s") % {
            "what": notification.get_kind_display(),
            "lead": lead.display_name,
            # Read in a mail client: the link must name this site.
            "url": settings.LEADCRM["PUBLIC_URL"].rstrip("/")
            + reverse("leads:detail", args=[lead.pk]),
        }
    try:
        send_mail(subject, body, None, [user.email])
    except OSError:
        logger.warning("Email for notification %s failed", notification.pk)
        return False
    return True


def notification_mark_read(*, user, notification_ids=None) -> int:
    """Mark the user's notifications read: the given ones, or all."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=list(notification_ids))
    return unread.update(read_at=timezone.now())


def notify_missed(*, older_than_seconds: int = 60, limit: int = 500) -> int:
    """Notify current assignments whose notification task never ran (a
    broker outage)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    missed = (
        Assignment.objects.filter(
            created_at__lt=cutoff,
            rep__isnull=False,
            lead__owner=F("rep"),
            lead__assigned_at=F("created_at"),
        )
        .exclude(notifications__kind=NotificationKind.ASSIGNED)
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in list(missed) if notify_assignment(assignment_id=pk))
