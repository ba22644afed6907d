import logging

from leadcrm.queue import enqueue

logger = logging.getLogger(__name__)


def rescore_changed_lead(sender, *, lead_id: int, **kwargs) -> None:
    from .tasks import recompute_lead

    # If the broker is down the lead stays marked stale and the periodic
    # sweeper rescores it later.
    enqueue(recompute_lead, lead_id)
