from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), max_retries=5)
def recompute_lead(lead_id: int) -> None:
    services.score_recompute(lead_id=lead_id)


@shared_task
def sweep_stale_scores() -> int:
    return services.score_sweep_stale()
