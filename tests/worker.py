"""A real Celery worker process for the integration tests."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database as a URL, for processes started by a test."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return (
        f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    )


def wait_for(check: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    def __init__(self, broker_url: str, log_dir: Path):
        self.broker_url = broker_url
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"worker-{self.queue}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "DATABASE_CONN_MAX_AGE": "0",
            # Rate limits are counted by the worker, by minute and address;
            # every test posts from one address, so without this the tests
            # of one minute would share a limit. Their own tests set one.
            "LEADCRM_RATE_LIMIT_REDIS_URL": "",
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "leadcrm", "worker",
                "--loglevel=INFO", "--pool=prefork", "--concurrency=2",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"{self.queue}@%h", "-Q", self.queue,
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._ready, timeout=60, what="the Celery worker to start")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited:\n{self.log()}")
        return " ready." in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RedisServer:
    """A private redis-server, so a test can stop and restart its broker
    without touching the machine's shared one."""

    def __init__(self, work_dir: Path):
        self.port = free_port()
        self.work_dir = work_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.work_dir),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._answers, timeout=10, what="redis-server to answer")

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def publishing_to(broker_url: str, queue: str):
    """Make this test process publish tasks to a real broker, not eagerly."""
    from leadcrm.celery import app

    saved = {
        key: app.conf[key]
        for key in ("broker_url", "task_always_eager", "task_default_queue")
    }
    app.conf.update(
        broker_url=broker_url, task_always_eager=False, task_default_queue=queue
    )
    app.amqp._producer_pool = None
    app._pool = None
    try:
        yield app
    finally:
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.update(saved)


@contextmanager
def running_worker(broker_url: str, log_dir: Path):
    """A worker on a queue of its own, with this process publishing to it."""
    process = WorkerProcess(broker_url, log_dir)
    process.start()
    try:
        with publishing_to(process.broker_url, process.queue):
            yield process
    finally:
        process.stop()
