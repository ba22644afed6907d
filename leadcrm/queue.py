"""Publishing tasks without letting a broker outage fail the caller."""

import logging
from functools import lru_cache

import redis
from celery import Task
from django.conf import settings
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


def wake(task: Task, *, key: str, ttl: int = 30) -> bool:
    """Enqueue `task` unless a wake-up for `key` is already waiting.

    For a task that drains a table of pending rows: a burst of rows needs
    one task, not one each. The key is set with NX before publishing; the
    task deletes it before its last look at the table, so a row committed
    while the key was set is seen by that look, and one committed after
    wakes a task of its own. The key expires after `ttl` seconds, so a
    task lost with its worker holds no wake-up for long. Returns False
    when nothing could be published; the caller's sweeper covers that.
    """
    conf = task.app.conf
    client = _redis(conf)
    if client is None:
        return enqueue(task)
    try:
        if not client.set(_key(conf, key), "1", nx=True, ex=ttl):
            return True
    except redis.RedisError:
        logger.warning("Broker unavailable, %s left for the sweeper", task.name)
        return False
    return enqueue(task)


def wake_clear(task: Task, *, key: str) -> None:
    """Called by the draining task before its last look for work."""
    conf = task.app.conf
    client = _redis(conf)
    if client is None:
        return
    try:
        client.delete(_key(conf, key))
    except redis.RedisError:
        # The key expires by itself; meanwhile the sweeper covers new rows.
        logger.warning("Broker unavailable, could not clear wake-up %s", key)


def _key(conf, key: str) -> str:
    return f"leadcrm:wake:{conf.task_default_queue}:{key}"


def _redis(conf) -> "redis.Redis | None":
    if conf.task_always_eager or not str(conf.broker_url).startswith("redis"):
        return None
    return _client(conf.broker_url)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # The broker's own short timeouts: a dead Redis must not hold a request.
    timeouts = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    return redis.Redis.from_url(
        url,
        socket_timeout=timeouts["socket_timeout"],
        socket_connect_timeout=timeouts["socket_connect_timeout"],
    )
