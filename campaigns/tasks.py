from celery import shared_task
from django.db import OperationalError

from leadcrm.queue import enqueue

from . import email_sending, events, inbound, services


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def process_submission(submission_id: int) -> None:
    services.submission_process(submission_id=submission_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def drain_submissions() -> int:
    return services.submission_drain()


@shared_task
def sweep_pending_submissions() -> int:
    return services.submission_sweep_pending()


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_consent_confirmation(record_id: int) -> None:
    services.consent_confirmation_send(record_id=record_id)


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def process_inbound_delivery(delivery_id: int) -> None:
    inbound.delivery_process(delivery_id=delivery_id)


@shared_task
def sweep_pending_inbound() -> int:
    return inbound.delivery_sweep_pending()


@shared_task
def mark_event_no_shows() -> int:
    return events.event_no_shows_mark()


# A long send gives its worker back now and then: the rest goes on in the
# next task, so other work is not stuck behind a hundred thousand emails.
EMAIL_TASK_SECONDS = 120.0


@shared_task(acks_late=True, autoretry_for=(OperationalError,), max_retries=5)
def start_email_campaign(email_campaign_id: int) -> None:
    email_sending.email_recipients_add(email_campaign_id=email_campaign_id)
    _send_batches(email_campaign_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), max_retries=5)
def send_email_batches(email_campaign_id: int) -> None:
    _send_batches(email_campaign_id)


def _send_batches(email_campaign_id: int) -> None:
    eager = send_email_batches.app.conf.task_always_eager
    more = email_sending.email_batches_run(
        email_campaign_id=email_campaign_id,
        time_budget=None if eager else EMAIL_TASK_SECONDS,
    )
    if more:
        enqueue(send_email_batches, email_campaign_id)


@shared_task
def sweep_email_campaigns() -> int:
    return email_sending.email_campaign_sweep()
