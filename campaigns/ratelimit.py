"""Per-IP and per-form rate limits for the capture endpoint, in Redis.

Fixed one-minute windows: one round trip (a small Lua script) increments
both counters and sets their expiry. The limiter fails open: with Redis down or
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
        per_ip, per_form = _count(url)(
            keys=[ip_counter, form_counter],
            args=[config["RATE_LIMIT_PER_IP"], WINDOW_SECONDS + 5],
        )
    except (redis.RedisError, OSError):
        _down_until = time.monotonic() + BACKOFF_SECONDS
        logger.warning("Rate limiter unavailable; capture goes on without it")
        return False

    return (
        per_ip > config["RATE_LIMIT_PER_IP"] or per_form > config["RATE_LIMIT_PER_FORM"]
    )


# One round trip. A post already over its address's limit is not counted
# against the form: one noisy address must not use up every visitor's share.
_COUNT = """
local ip = redis.call('INCR', KEYS[1])
if ip == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if ip > tonumber(ARGV[1]) then return {ip, 0} end
local form = redis.call('INCR', KEYS[2])
if form == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return {ip, form}
"""


@cache
def _count(url: str):
    return _client(url).register_script(_COUNT)


def reset_backoff() -> None:
    global _down_until
    _down_until = 0.0
