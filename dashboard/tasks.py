from celery import shared_task

from . import services


@shared_task
def refresh_summary() -> int:
    return services.summary_refresh()


@shared_task
def rebuild_summary() -> int:
    # Catches what the incremental pass cannot see: deleted leads.
    return services.summary_refresh(full=True)
