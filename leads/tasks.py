"""Thin tasks of the sales hand-off: each reloads by id and calls a service;
all are safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from . import activities, assignment, handoff, notifications


@shared_task(acks_late=True, autoretry_for=(OperationalError,), max_retries=5)
def assign_leads(lead_ids: list[int]) -> int:
    return assignment.lead_assign_many(lead_ids=lead_ids)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), max_retries=5)
def notify_assignment(assignment_id: int) -> None:
    notifications.notify_assignment(assignment_id=assignment_id)


@shared_task
def handoff_sweep() -> dict[str, int]:
    """Periodic: assign MQLs left without an owner, tell reps of assignments
    whose notification was never sent, escalate SLA breaches."""
    return {
        "assigned": assignment.assign_waiting(),
        "notified": notifications.notify_missed(),
        "escalated": handoff.sla_escalate(),
    }


@shared_task
def send_task_reminders() -> int:
    """Beat, every minute: each due reminder is claimed before it is sent,
    so overlapping runs send it once."""
    return activities.task_reminders_send()
