"""Per-IP and per-form rate limits for the capture endpoint, in Redis.

Fixed one-minute windows: one pipelined round trip increments both
counters and sets their expiry. The limiter fails open: with Redis down or
slow, capture goes on unlimited (a lost lead costs more than some spam), and
the limiter stays off for a short while instead of paying a timeout on
every post.
"""

import logging
import time
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# After a Redis failure the limiter is skipped this long.
BACKOFF_SECONDS = 10.0

_down_until = 0.0


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=0.25, socket_connect_timeout=0.25, retry_on_timeout=False
    )


def rate_limited(*, form_key: str, remote_addr: str | None) -> bool:
    """Count this post; True when the IP or the form is over its limit."""
    global _down_until
    config = settings.LEADCRM
    url = config["RATE_LIMIT_REDIS_URL"]
    if not url or time.monotonic() < _down_until:
        return False

    window = int(time.time()) // WINDOW_SECONDS
    ip_counter = f"leadcrm:rl:ip:{remote_addr or '-'}:{window}"
    form_counter = f"leadcrm:rl:form:{form_key}:{window}"
    try:
        pipe = _client(url).pipeline(transaction=False)
        pipe.incr(ip_counter)
        pipe.expire(ip_counter, WINDOW_SECONDS + 5)
        pipe.incr(form_counter)
        pipe.expire(form_counter, WINDOW_SECONDS + 5)
        per_ip, _, per_form, _ = pipe.execute()
    except (redis.RedisError, OSError):
        _down_until = time.monotonic() + BACKOFF_SECONDS
        logger.warning("Rate limiter unavailable; capture goes on without it")
        return False

    return (
        per_ip > config["RATE_LIMIT_PER_IP"] or per_form > config["RATE_LIMIT_PER_FORM"]
    )


def reset_backoff() -> None:
    global _down_until
    _down_until = 0.0
