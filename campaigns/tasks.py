from celery import shared_task
from django.db import OperationalError

from . import events, inbound, services


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
