"""Per-IP and per-form rate limits for form posts, counted in Redis.

Fixed one-minute windows of the time a post was received. Posts are
counted when a worker first takes them, a batch in one round trip (a small
Lua script), so the capture request itself never waits on the limiter; a
post over a limit is then kept as spam instead of processed. The limiter
fails open: with Redis down or slow, posts go through unlimited (a lost
lead costs more than some spam), and the limiter stays off for a short
while instead of paying a timeout on every batch.
"""

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import NamedTuple

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# A window's counters outlive it by this much: a post taken late (a
# backlog, a retry) still finds its window's count.
COUNTER_TTL = WINDOW_SECONDS + 300
# After a Redis failure the limiter is skipped this long.
BACKOFF_SECONDS = 10.0

_down_until = 0.0


class Post(NamedTuple):
    form_id: int
    remote_addr: str | None
    received_at: datetime


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=0.25, socket_connect_timeout=0.25, retry_on_timeout=False
    )


def posts_over_limit(posts: Sequence[Post]) -> list[bool]:
    """Count these posts, in order; for each, whether its address or its
    form was over the limit in the post's window."""
    global _down_until
    config = settings.LEADCRM
    url = config["RATE_LIMIT_REDIS_URL"]
    if not posts or not url or time.monotonic() < _down_until:
        return [False] * len(posts)

    keys = []
    for post in posts:
        window = int(post.received_at.timestamp()) // WINDOW_SECONDS
        keys.append(f"leadcrm:rl:ip:{post.remote_addr or '-'}:{window}")
        keys.append(f"leadcrm:rl:form:{post.form_id}:{window}")
    try:
        over = _count(url)(
            keys=keys,
            args=[
                config["RATE_LIMIT_PER_IP"],
                config["RATE_LIMIT_PER_FORM"],
                COUNTER_TTL,
            ],
        )
    except (redis.RedisError, OSError):
        _down_until = time.monotonic() + BACKOFF_SECONDS
        logger.warning("Rate limiter unavailable; posts go on without it")
        return [False] * len(posts)

    return [bool(flag) for flag in over]


# One round trip for a batch: KEYS holds each post's address and form
# counters in turn. A post already over its address's limit is not counted
# against the form: one noisy address must not use up every visitor's share.
_COUNT = """
local over = {}
for i = 1, #KEYS, 2 do
    local ip = redis.call('INCR', KEYS[i])
    if ip == 1 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
    if ip > tonumber(ARGV[1]) then
        over[#over + 1] = 1
    else
        local form = redis.call('INCR', KEYS[i + 1])
        if form == 1 then redis.call('EXPIRE', KEYS[i + 1], ARGV[3]) end
        over[#over + 1] = form > tonumber(ARGV[2]) and 1 or 0
    end
end
return over
"""


@cache
def _count(url: str):
    return _client(url).register_script(_COUNT)


def reset_backoff() -> None:
    global _down_until
    _down_until = 0.0
