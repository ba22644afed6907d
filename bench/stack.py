"""The system under test: its own database, Redis db, gunicorn and worker.

Everything here is created for one run and torn down after it. Processes are
stopped by the pid this module started, never by name.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import redis
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent

# Runs in a child process with the bench settings, so the ORM (not SQL
# written here) creates the form exactly as the product would.
CREATE_FORM = """
import django
django.setup()
from campaigns.models import Campaign, WebForm
campaign = Campaign.objects.create(name="Bench campaign", kind="webinar")
WebForm.objects.create(
    campaign=campaign, name="Bench demo form", key={key!r},
    interaction_kind="demo_request",
)
"""


@dataclass(frozen=True)
class StackConfig:
    database_url: str
    redis_url: str
    queue: str
    form_key: str
    work_dir: Path
    web_workers: int
    web_worker_class: str
    web_threads: int
    worker_concurrency: int
    log_level: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(config: StackConfig) -> dict[str, str]:
    """Production settings pointed at the bench database and Redis db."""
    static_root = config.work_dir / "static"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadcrm.settings",
        "DATABASE_URL": config.database_url,
        # Persistent connections, as in production: without them every
        # request would pay a PostgreSQL connection set-up.
        "DATABASE_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": config.redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": config.queue,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_STATIC_ROOT": str(static_root),
        "LOG_LEVEL": config.log_level,
        # The load comes from one address: the worker still counts every
        # post against the limits, but never keeps one as spam.
        "LEADCRM_RATE_LIMIT_PER_IP": "1000000000",
        "LEADCRM_RATE_LIMIT_PER_FORM": "1000000000",
        "PYTHONUNBUFFERED": "1",
    }


def database_recreate(database_url: str) -> None:
    """Drop and create the bench database; only ever the one in the URL."""
    base, name = database_url.rsplit("/", 1)
    admin = psycopg2.connect(f"{base}/postgres", connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            ident = sql.Identifier(name)
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident)
            )
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    finally:
        admin.close()


def redis_flush(redis_url: str) -> None:
    """Empty the bench's own Redis db number, and nothing else."""
    redis.Redis.from_url(redis_url, socket_connect_timeout=2).flushdb()


def redis_pid(redis_url: str) -> int:
    info = redis.Redis.from_url(redis_url, socket_connect_timeout=2).info("server")
    return int(info["process_id"])


def app_prepare(config: StackConfig, env: dict[str, str]) -> None:
    """Migrate, collect static files and create the form, logging to a file."""
    log = config.work_dir / "prepare.log"
    manage = [sys.executable, "manage.py"]
    _run([*manage, "migrate", "--noinput", "-v", "0"], env, log)
    # DEBUG off serves static files through WhiteNoise's manifest storage,
    # which needs a collected manifest to render any page.
    _run([*manage, "collectstatic", "--noinput", "-v", "0"], env, log)
    _run([sys.executable, "-c", CREATE_FORM.format(key=config.form_key)], env, log)


def _run(argv: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        completed = subprocess.run(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Service:
    """One long-running process of the stack, logging to its own file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool], timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            # A session of its own: Ctrl-C reaches only the bench, which then
            # stops this process in order instead of all at once.
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{_tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready:\n{_tail(self.log_path)}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM our pid; if it lingers, SIGKILL the group it leads."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # The group is the session started above: this process and the
            # children it forked, nothing else.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def web_service(config: StackConfig, env: dict[str, str], port: int) -> Service:
    argv = [
        sys.executable, "-m", "gunicorn", "leadcrm.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(config.web_workers),
        "--worker-class", config.web_worker_class,
        "--threads", str(config.web_threads),
        "--worker-tmp-dir", "/dev/shm",
        # As in production (Dockerfile): an access log line per request.
        "--access-logfile", str(config.work_dir / "access.log"),
    ]  # fmt: skip
    return Service("gunicorn", argv, env, config.work_dir / "gunicorn.log")


def worker_service(config: StackConfig, env: dict[str, str]) -> Service:
    argv = [
        sys.executable, "-m", "celery", "-A", "leadcrm", "worker",
        # INFO as in production, and the " ready." line is logged at INFO.
        "--loglevel", "INFO", "--pool", "prefork",
        "--concurrency", str(config.worker_concurrency),
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"{config.queue}@%h", "-Q", config.queue,
    ]  # fmt: skip
    return Service("celery", argv, env, config.work_dir / "celery.log")


def web_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    return check


def worker_ready(service: Service) -> Callable[[], bool]:
    def check() -> bool:
        return service.log_path.exists() and " ready." in service.log_path.read_text(
            errors="replace"
        )

    return check
