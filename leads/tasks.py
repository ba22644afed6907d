from celery import shared_task

from . import activities


@shared_task
def send_task_reminders() -> int:
    """Beat, every minute: each due reminder is claimed before it is sent,
    so overlapping runs send it once."""
    return activities.task_reminders_send()
