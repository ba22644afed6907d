from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import rulesets, services


@shared_task(acks_late=True, autoretry_for=(OperationalError,), max_retries=5)
def recompute_lead(lead_id: int) -> None:
    services.rescore_if_stale(lead_id=lead_id)


@shared_task
def sweep_stale_scores() -> int:
    return services.score_sweep_stale()


@shared_task(acks_late=True)
def run_rescore_job(job_id: int) -> None:
    rulesets.rescore_job_run(job_id=job_id)


# Long: a redelivered slice resumes from its saved progress, and so does one
# retried after a database error handed it back.
@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def run_rescore_slice(slice_id: int) -> None:
    rulesets.rescore_slice_run(slice_id=slice_id)


@shared_task
def sweep_rescore_jobs() -> int:
    return rulesets.rescore_jobs_sweep()


@shared_task
def nightly_rescore() -> None:
    rulesets.rescore_all_nightly()
