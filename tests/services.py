"""Real services for the integration tests: what is there, and how to get it.

A test marked `postgres`, `redis`, `worker`, `browser`, `sample_data` or
`gettext`
skips on a laptop that lacks the service and fails where services are
required (CI=true or LEADCRM_REQUIRE_SERVICES=1): a green CI never hides a
missing service.
"""

import os
import shutil
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import connection

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def services_required() -> bool:
    return os.environ.get("LEADCRM_REQUIRE_SERVICES") in {"1", "true"} or (
        os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    )


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@cache
def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(redis_url(), socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def postgres_available() -> bool:
    return connection.vendor == "postgresql"


def chromium_path() -> str | None:
    override = os.environ.get("LEADCRM_CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def sample_csv() -> Path:
    return Path(settings.LEADCRM["SAMPLE_DATA_DIR"]) / "x-education-leads-sample.csv"


def missing(marker: str) -> str | None:
    """Why the service behind a marker is missing, or None when it is here."""
    if marker == "postgres" and not postgres_available():
        return "needs PostgreSQL (DATABASE_URL is not a PostgreSQL database)"
    if marker == "redis" and not redis_available():
        return f"needs Redis at {redis_url()}"
    if marker == "worker":
        return missing("postgres") or missing("redis")
    if marker == "browser":
        try:
            import playwright  # noqa: F401
        except ImportError:
            return "needs the playwright package"
        if chromium_path() is None:
            return "needs Debian's chromium (apt-get install chromium)"
    tools = ("xgettext", "msgmerge")
    if marker == "gettext" and not all(shutil.which(tool) for tool in tools):
        return "needs GNU gettext (apt-get install gettext)"
    if marker == "sample_data" and not sample_csv().exists():
        return f"needs the sample export at {sample_csv()}"
    return None
