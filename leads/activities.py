"""Working a lead: calls, meetings, emails, notes and tasks.

A call, a meeting or an email is a contact with the lead, so it is also
recorded as an interaction through `lead_ingest`, and scoring reads it like
any other. Notes and tasks are sales' own records and score nothing.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    CONTACT_KINDS,
    Activity,
    ActivityKind,
    Channel,
    Interaction,
    InteractionKind,
    Lead,
)
from .services import InteractionData, LeadData, lead_ingest, lead_mark_contacted

logger = logging.getLogger(__name__)

# A contact logged a little ahead of the server's clock (a phone's clock,
# a slow form) is still "now"; anything later has not happened yet.
_CLOCK_SLACK = timedelta(minutes=5)
# Dates a person types are checked against a sane span: a mistyped year
# (0001, 2206) would otherwise be stored and break every page showing it.
_FURTHEST_BACK = timedelta(days=366 * 5)
_FURTHEST_AHEAD = timedelta(days=366 * 10)


@dataclass(frozen=True)
class ActivityInput:
    kind: str
    subject: str
    body: str = ""
    occurred_at: datetime | None = None
    due_at: datetime | None = None
    remind_at: datetime | None = None
    assigned_to_id: int | None = None


def activity_log(*, lead_id: int, by, data: ActivityInput) -> Activity:
    """Log what sales did about a lead; a contact also becomes an interaction
    (kind sales_call, channel manual) and the lead is rescored after commit.

    A task needs a due time; its reminder defaults to the due time.
    """
    if by is None or not by.has_perm("leads.add_activity"):
        raise PermissionDenied(_("You may not log activities on this lead."))
    now = timezone.now()
    data = _activity_clean(data, now)

    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        activity = Activity(
            lead=lead,
            kind=data.kind,
            subject=data.subject,
            body=data.body,
            occurred_at=data.occurred_at or now,
            created_by=by,
            created_at=now,
        )
        if data.kind == ActivityKind.TASK:
            activity.due_at = data.due_at
            activity.remind_at = data.remind_at or data.due_at
            activity.assigned_to_id = data.assigned_to_id or by.pk
        if data.kind in CONTACT_KINDS:
            activity.interaction = _record_contact(lead, activity)
        activity.save()

        if data.kind in CONTACT_KINDS:
            _on_contact_logged(lead.pk, activity.occurred_at)

    logger.info("Activity %s (%s) logged on lead %s", activity.pk, data.kind, lead_id)
    return activity


def _activity_clean(data: ActivityInput, now: datetime) -> ActivityInput:
    errors: dict[str, str] = {}
    if data.kind not in ActivityKind.values:
        errors["kind"] = _("Choose what you did.")
    if not data.subject.strip():
        errors["subject"] = _("Say what it was about.")
    if (
        data.kind in CONTACT_KINDS
        and data.occurred_at
        and (data.occurred_at > now + _CLOCK_SLACK)
    ):
        errors["occurred_at"] = _(
            "A call, meeting or email is logged once it happened: the time "
            "cannot be in the future."
        )
    elif data.occurred_at and data.occurred_at < now - _FURTHEST_BACK:
        errors["occurred_at"] = _("That is too long ago: check the year.")
    if data.kind == ActivityKind.TASK:
        if data.due_at is None:
            errors["due_at"] = _("A task needs a due date and time.")
        elif abs(data.due_at - now) > _FURTHEST_AHEAD:
            errors["due_at"] = _("Choose a due date within ten years of today.")
        elif data.remind_at and data.remind_at > data.due_at:
            errors["remind_at"] = _("The reminder must come before the task is due.")
        elif data.remind_at and data.remind_at < data.due_at - _FURTHEST_AHEAD:
            errors["remind_at"] = _("The reminder is too long before the task.")
    if errors:
        raise ValidationError(errors)
    return ActivityInput(
        kind=data.kind,
        subject=data.subject.strip()[:200],
        body=data.body.strip(),
        occurred_at=data.occurred_at,
        due_at=data.due_at,
        remind_at=data.remind_at,
        assigned_to_id=data.assigned_to_id,
    )


def _record_contact(lead: Lead, activity: Activity) -> Interaction:
    # The lead is found again by its own stored identity; a random key
    # makes the interaction this activity's alone.
    key = f"activity:{uuid.uuid4()}"
    result = lead_ingest(
        data=LeadData(email=lead.email, phone=lead.phone, external_id=lead.external_id),
        interactions=[
            InteractionData(
                kind=InteractionKind.SALES_CALL,
                channel=Channel.MANUAL,
                occurred_at=activity.occurred_at,
                subject=activity.subject,
                details={"activity": activity.kind},
                idempotency_key=key,
            )
        ],
    )
    if result.lead.pk != lead.pk:
        raise AssertionError("The lead's identity led to another lead.")
    return Interaction.objects.get(idempotency_key=key)


def _on_contact_logged(lead_id: int, at: datetime) -> None:
    """The one place a logged contact tells the hand-off about it: the first
    one stops the first-contact SLA clock and records speed to lead."""
    lead_mark_contacted(lead_id=lead_id, at=at)


def task_complete(*, task_id: int, by) -> Activity:
    """Mark a task done. Completing it twice is refused."""
    if by is None or not by.has_perm("leads.change_activity"):
        raise PermissionDenied(_("You may not complete this task."))

    with transaction.atomic():
        task = Activity.objects.select_for_update().get(pk=task_id)
        if task.kind != ActivityKind.TASK:
            raise ValidationError(_("Only a task can be completed."))
        if task.completed_at is not None:
            raise ValidationError(_("The task is done already."))
        task.completed_at = timezone.now()
        task.completed_by = by
        task.save(update_fields=["completed_at", "completed_by"])

    logger.info("Task %s completed by user %s", task.pk, by.pk)
    return task


def task_reminders_send(*, now: datetime | None = None) -> int:
    """Send the reminders that are due, each exactly once; return how many.

    Each reminder is claimed by a conditional UPDATE before it is sent, so
    two beat runs (or two workers) never send one twice. A failed send
    gives the claim back and is tried again at the next run.
    """
    now = now or timezone.now()
    due = list(
        Activity.objects.open_tasks()
        .filter(remind_at__lte=now, reminder_sent_at__isnull=True)
        .order_by("remind_at", "pk")
        .values_list("pk", flat=True)[:500]
    )
    sent = 0
    for task_id in due:
        claimed = Activity.objects.filter(
            pk=task_id, reminder_sent_at__isnull=True, completed_at__isnull=True
        ).update(reminder_sent_at=now)
        if not claimed:
            continue
        try:
            _send_reminder(
                Activity.objects.select_related("lead", "assigned_to").get(pk=task_id)
            )
        except Exception:
            logger.exception("Reminder of task %s failed, retried next run", task_id)
            Activity.objects.filter(pk=task_id).update(reminder_sent_at=None)
            continue
        sent += 1
    if sent:
        logger.info("Sent %s task reminders", sent)
    return sent


def _send_reminder(task: Activity) -> None:
    # The reminder is also shown on the rep's task list and the lead's page
    # (reminder_sent_at), so a rep without an email address still sees it.
    user = task.assigned_to
    if user is None or not user.email:
        return
    lead_url = task.lead.get_absolute_url()
    send_mail(
        subject=_("Reminder: %(subject)s") % {"subject": task.subject},
        message=_("Task: %(subject)s\nLead: %(lead)s\nDue: %(due)s\n%(url)s")
        % {
            "subject": task.subject,
            "lead": task.lead.display_name,
            "due": timezone.localtime(task.due_at).strftime("%d/%m/%Y %H:%M"),
            "url": lead_url,
        },
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


# Reads -------------------------------------------------------------------

TASK_FILTERS = ("open", "overdue", "today", "upcoming", "done")


def task_list(*, user, when: str = "open") -> QuerySet[Activity]:
    """The tasks assigned to a user on leads they may see.

    `when`: open (not done, soonest first), overdue, today (due before the
    end of the local day, not done), upcoming (due later) or done.
    """
    tasks = (
        Activity.objects.visible_to(user)
        .filter(kind=ActivityKind.TASK, assigned_to=user)
        .select_related("lead")
    )
    now = timezone.now()
    end_of_today = timezone.localtime(now).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) + timedelta(days=1)
    if when == "done":
        return tasks.filter(completed_at__isnull=False).order_by("-completed_at", "-pk")
    tasks = tasks.filter(completed_at__isnull=True).order_by("due_at", "pk")
    if when == "overdue":
        return tasks.filter(due_at__lt=now)
    if when == "today":
        return tasks.filter(due_at__lt=end_of_today)
    if when == "upcoming":
        return tasks.filter(due_at__gte=end_of_today)
    return tasks


def reminders_shown(*, user) -> QuerySet[Activity]:
    """Open tasks of a user whose reminder went out: shown until done."""
    return (
        task_list(user=user, when="open")
        .filter(reminder_sent_at__isnull=False)
        .order_by("due_at", "pk")
    )


def lead_activities(*, lead: Lead, limit: int = 50) -> list[Activity]:
    return list(
        lead.activities.select_related(
            "created_by", "assigned_to", "completed_by"
        ).order_by("-occurred_at", "-id")[:limit]
    )
