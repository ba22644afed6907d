"""Publishing tasks without letting a broker outage fail the caller."""

import contextlib
import logging
import time
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


# How long a draining task's hold on a wake-up promises one more look at
# its table. Posters seeing it skip the broker until then, and the task
# looks again after it has run out before it stops.
HOLD_SECONDS = 0.3
# For clocks that drift apart within one promise: a poster's lasts this
# much less, and the draining task's this much more.
_HOLD_MARGIN = 0.02
_QUEUED, _DRAINING = b"queued", b"draining"

# Per process: until when (monotonic) each wake-up key is known to be held
# by a draining task that will look again.
_held_until: dict[str, float] = {}

# One round trip: a key already set says who holds it, and for how long;
# an unset one is taken for a task about to be published.
_WAKE = """
local held = redis.call('GET', KEYS[1])
if held then return {held, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""


def wake(task: Task, *, key: str, ttl: int = 30) -> bool:
    """Enqueue `task` unless a wake-up for `key` is already waiting.

    For a task that drains a table of pending rows: a burst of rows needs
    one task, not one each. An unset key is set ("queued") before
    publishing; a set one means a task will look at the table after this
    row was committed: one queued, or one draining (see `wake_hold`). A
    draining task's hold also says how long it promises to look again, and
    until then this process does not ask the broker at all. A queued key
    expires after `ttl` seconds, so a task lost with its broker message
    holds no wake-up for long. Returns False when nothing could be
    published; the caller's sweeper covers that.
    """
    conf = task.app.conf
    client = _redis(conf)
    if client is None:
        return enqueue(task)
    name = _key(conf, key)
    asked = time.monotonic()
    if asked < _held_until.get(name, 0.0):
        return True

    try:
        held = _wake_script(conf.broker_url)(keys=[name], args=[_QUEUED, ttl])
    except redis.RedisError:
        logger.warning("Broker unavailable, %s left for the sweeper", task.name)
        return False
    if held is None:
        if enqueue(task):
            return True
        # Nothing was sent: a "queued" key left behind would quiet every
        # poster for `ttl` seconds on the word of a task that does not
        # exist. Take it back, unless a drain has held it meanwhile.
        with contextlib.suppress(redis.RedisError):
            _unqueue_script(conf.broker_url)(keys=[name], args=[_QUEUED])
        return False

    holder, remaining_ms = held
    if holder == _DRAINING and remaining_ms > 0:
        # The promise is counted from before the question: it ran out no
        # later than that in the broker's time.
        _held_until[name] = asked + remaining_ms / 1000 - _HOLD_MARGIN
    return True


def wake_hold(task: Task, *, key: str) -> float:
    """Called by the draining task as it starts and after each batch: it
    holds the wake-up, promising one more look at its table once
    HOLD_SECONDS have passed. Returns when that is (monotonic); the task
    must look after it before it stops, so a row whose poster relied on
    the hold is seen. Without a broker there is nothing to honour: 0."""
    conf = task.app.conf
    client = _redis(conf)
    if client is None:
        return 0.0
    try:
        client.set(_key(conf, key), _DRAINING, px=int(HOLD_SECONDS * 1000))
    except redis.RedisError:
        # It may have been set all the same; honour it.
        logger.warning("Broker unavailable, could not hold wake-up %s", key)
    return time.monotonic() + HOLD_SECONDS + _HOLD_MARGIN


def _key(conf, key: str) -> str:
    return f"leadcrm:wake:{conf.task_default_queue}:{key}"


def _redis(conf) -> "redis.Redis | None":
    if conf.task_always_eager or not str(conf.broker_url).startswith("redis"):
        return None
    return _client(conf.broker_url)


@lru_cache(maxsize=4)
def _wake_script(url: str):
    return _client(url).register_script(_WAKE)


_UNQUEUE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""


@lru_cache(maxsize=4)
def _unqueue_script(url: str):
    return _client(url).register_script(_UNQUEUE)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # The broker's own short timeouts: a dead Redis must not hold a request.
    timeouts = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    return redis.Redis.from_url(
        url,
        socket_timeout=timeouts["socket_timeout"],
        socket_connect_timeout=timeouts["socket_connect_timeout"],
    )
