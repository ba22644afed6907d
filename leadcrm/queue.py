"""Publishing tasks without letting a broker outage fail the caller."""

import logging

from celery import Task
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue(task: Task, *args) -> bool:
    """Send a task; on a broker failure log it and return False.

    Callers only enqueue work whose state is already committed and which a
    periodic sweeper finds again, so a failed publish delays it, never loses
    it. Publishing does not retry: the broker timeouts in settings keep a
    web request from waiting on a dead broker.
    """
    try:
        task.apply_async(args=args, retry=False)
    except (OperationalError, ConnectionError, OSError, TimeoutError):
        logger.warning("Broker unavailable, %s left for the sweeper", task.name)
        return False
    except Exception:
        if not task.app.conf.task_always_eager:
            raise
        # Eager mode runs the task right here, after the caller's commit: its
        # failure must not turn a committed request into an error page.
        logger.exception("Eager task %s failed, left for the sweeper", task.name)
        return False
    return True
