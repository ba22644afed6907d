"""`make test`: lint, migration check and the test suite, against real services.

It finds PostgreSQL and Redis on localhost (or takes DATABASE_URL and
TEST_REDIS_URL from the environment). Where one is missing, a laptop run
falls back (SQLite, and the tests that need the service are skipped with a
reason); with CI=true or LEADCRM_REQUIRE_SERVICES=1 a missing service makes
those tests fail instead.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/leadcrm"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def postgres_answers(url: str) -> bool:
    """True when PostgreSQL answers; creates the database when it is missing
    (pytest makes its own test database beside it)."""
    import psycopg2

    base, name = url.rsplit("/", 1)
    try:
        conn = psycopg2.connect(base + "/postgres", connect_timeout=3)
    except psycopg2.Error:
        return False
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return True


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def run(*cmd: str, env: dict | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    completed = subprocess.run(cmd, cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def main() -> None:
    env = dict(os.environ)
    required = env.get("CI", "").lower() in {"1", "true", "yes"} or env.get(
        "LEADCRM_REQUIRE_SERVICES"
    ) in {"1", "true"}

    if "DATABASE_URL" not in env:
        if postgres_answers(DEFAULT_PG):
            env["DATABASE_URL"] = DEFAULT_PG
        else:
            print("PostgreSQL not found on 127.0.0.1:5432: using SQLite.", flush=True)
    redis_url = env.setdefault("TEST_REDIS_URL", DEFAULT_REDIS)
    if not redis_answers(redis_url):
        print(f"Redis not answering at {redis_url}.", flush=True)
    if required:
        env["LEADCRM_REQUIRE_SERVICES"] = "1"

    # The suite runs tasks eagerly unless a test starts a real worker.
    env.pop("CELERY_BROKER_URL", None)
    env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    env.setdefault("DJANGO_DEBUG", "1")

    run(str(BIN / "ruff"), "check", ".")
    run(str(BIN / "ruff"), "format", "--check", ".")
    run(
        str(BIN / "python"),
        "manage.py",
        "makemigrations",
        "--check",
        "--dry-run",
        env=env,
    )
    deploy_env = {
        **env,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    }
    run(
        str(BIN / "python"),
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=deploy_env,
    )
    run(str(BIN / "python"), "-m", "pytest", *sys.argv[1:], env=env)


if __name__ == "__main__":
    main()
