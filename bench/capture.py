"""Benchmark the capture endpoint against /healthz, and post-to-level latency.

Run on demand, never by the test suite:

    .venv/bin/python bench/capture.py [--help]

It builds its own stack (database leadcrm_bench, Redis db 14, gunicorn and a
Celery worker with production settings), drives it from separate generator
processes, prints the numbers and the goals, and writes them as JSON to
bench/results/.
"""

import argparse
import multiprocessing
import shutil
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from loadgen import CAPTURE, HEALTHZ, Job, KindResult, run_job
from measure import (
    CpuMeter,
    drain_wait,
    http_stats,
    machine_cores_busy,
    submission_high_water,
)
from report import Phase, build_report, print_report, write_report
from stack import (
    ROOT,
    StackConfig,
    app_env,
    app_prepare,
    database_recreate,
    free_port,
    redis_flush,
    redis_pid,
    web_ready,
    web_service,
    worker_ready,
    worker_service,
)

FORM_KEY = "bench"
# What a healthy answer is: a form post from a browser is answered with a
# 303 to the thank-you page.
EXPECTED_STATUS = {HEALTHZ: {200}, CAPTURE: {202, 303}}
# Each phase draws emails and phones from its own block of the generator's
# identity space, so no post ever merges into another phase's lead.
IDENTITIES_PER_PHASE = 50_000_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    load = parser.add_argument_group("load")
    load.add_argument("--duration", type=float, default=10, help="seconds per phase")
    load.add_argument("--warmup", type=float, default=2, help="seconds, not counted")
    load.add_argument(
        "--connections", type=int, default=8, help="concurrent connections in all"
    )
    load.add_argument(
        "--generators", type=int, default=2, help="load generator processes"
    )
    load.add_argument("--no-mixed", action="store_true", help="skip the mixed phase")
    load.add_argument(
        "--steady-rate",
        type=float,
        default=25,
        help="req/s of a last, paced capture phase: latency and post-to-level"
        " at a load the stack sustains (0 skips it)",
    )
    load.add_argument(
        "--drain-timeout",
        type=float,
        default=120,
        help="seconds to wait for the worker to score a phase's submissions",
    )
    server = parser.add_argument_group("server")
    # gthread by default: on 2 cores, one process per core with threads to
    # overlap the capture path's waits on PostgreSQL and Redis, and it keeps
    # connections alive where sync workers close every one (the Dockerfile's
    # 4 sync workers measured 20-40% more CPU per request here).
    server.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    server.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="gthread",
        help="gunicorn worker class",
    )
    server.add_argument(
        "--threads", type=int, default=4, help="threads per gthread worker"
    )
    server.add_argument(
        "--worker-concurrency", type=int, default=2, help="Celery worker processes"
    )
    server.add_argument("--log-level", default="INFO", help="the app's LOG_LEVEL")
    where = parser.add_argument_group("services")
    where.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/leadcrm_bench",
        help="dropped and recreated at start",
    )
    where.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/14",
        help="this db number is flushed at start",
    )
    where.add_argument(
        "--hold",
        action="store_true",
        help="start the stack, run no phase and wait for Ctrl-C (for profiling)",
    )
    where.add_argument(
        "--keep-logs", action="store_true", help="keep the server logs' directory"
    )
    return parser.parse_args()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def _check(args: argparse.Namespace) -> None:
    """Refuse flags that would measure nothing or wipe someone else's data."""
    if args.connections < args.generators:
        sys.exit("--connections must be at least --generators")
    if args.duration <= 0:
        sys.exit("--duration must be positive")
    # The database is dropped and the Redis db flushed: never a shared one.
    if "bench" not in urlsplit(args.database_url).path:
        sys.exit("--database-url must name a database with 'bench' in its name")
    if urlsplit(args.redis_url).path.strip("/") in ("", "0"):
        sys.exit("--redis-url must name a dedicated db number, not 0")


def main() -> int:
    args = parse_args()
    # Both signals must unwind through the finally blocks that stop the
    # servers; a shell starting the bench in the background ignores SIGINT.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _check(args)
    work_dir = Path(tempfile.mkdtemp(prefix="leadcrm-bench-"))
    config = StackConfig(
        database_url=args.database_url,
        redis_url=args.redis_url,
        queue=f"bench-{uuid.uuid4().hex[:8]}",
        form_key=FORM_KEY,
        work_dir=work_dir,
        web_workers=args.web_workers,
        web_worker_class=args.worker_class,
        web_threads=args.threads,
        worker_concurrency=args.worker_concurrency,
        log_level=args.log_level,
    )

    # Whatever else runs on the machine competes for the same cores.
    background = machine_cores_busy(2.0)
    print(f"Load from other processes before start: {background:.2f} cores")
    try:
        phases = run_stack(args, config)
    finally:
        if args.keep_logs:
            print(f"Server logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    if args.hold:
        return 0
    flags = {**vars(args), "queue": config.queue}
    report = build_report(args=flags, phases=phases, background=background)
    print_report(report)
    path = write_report(report)
    print(f"\nResults written to {path.relative_to(ROOT)}")
    return 0 if all(goal["pass"] for goal in report["goals"]) else 1


def run_stack(args: argparse.Namespace, config: StackConfig) -> list[Phase]:
    """Set up, run every phase, and stop what was started, whatever happens."""
    print(f"Preparing {config.database_url} and {config.redis_url} ...", flush=True)
    database_recreate(config.database_url)
    redis_flush(config.redis_url)
    env = app_env(config)
    app_prepare(config, env)

    port = free_port()
    web = web_service(config, env, port)
    worker = worker_service(config, env)
    try:
        web.start(web_ready(port))
        worker.start(worker_ready(worker))
        print(f"gunicorn pid {web.pid} on :{port}, celery pid {worker.pid},"
              f" queue {config.queue}", flush=True)  # fmt: skip
        meter = CpuMeter(
            trees={"gunicorn": web.pid, "celery": worker.pid},
            database_url=config.database_url,
            redis_pid=redis_pid(config.redis_url),
        )
        if args.hold:
            _hold()
            return []
        return run_phases(args, port, meter)
    finally:
        web.stop()
        worker.stop()


def _hold() -> None:
    print("Holding the stack for manual probing or profiling; Ctrl-C stops it.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print()


@dataclass(frozen=True)
class PhasePlan:
    name: str
    kinds: tuple[str, ...]
    duration: float
    rate: float = 0.0  # requests per second in all; 0 is as fast as answered


def phase_plans(args: argparse.Namespace) -> list[PhasePlan]:
    plans = [
        PhasePlan("warmup", (HEALTHZ, CAPTURE), args.warmup),
        PhasePlan("healthz", (HEALTHZ,), args.duration),
        PhasePlan("capture", (CAPTURE,), args.duration),
    ]
    if not args.no_mixed:
        plans.append(PhasePlan("mixed", (HEALTHZ, CAPTURE), args.duration))
    if args.steady_rate > 0:
        plans.append(
            PhasePlan("steady", (CAPTURE,), args.duration, rate=args.steady_rate)
        )
    return [plan for plan in plans if plan.duration > 0]


def run_phases(args: argparse.Namespace, port: int, meter: CpuMeter) -> list[Phase]:
    # Spawned, not forked: the generators share nothing with this process.
    context = multiprocessing.get_context("spawn")
    phases = []
    with ProcessPoolExecutor(args.generators, mp_context=context) as pool:
        runner = Runner(args=args, port=port, meter=meter, pool=pool)
        for index, plan in enumerate(phase_plans(args)):
            pace = f" at {plan.rate:g} req/s" if plan.rate else ""
            print(f"Phase {plan.name}: {plan.duration:g} s{pace} ...", flush=True)
            phases.append(runner.run(plan, index))
    return [phase for phase in phases if phase.name != "warmup"]


@dataclass
class Runner:
    args: argparse.Namespace
    port: int
    meter: CpuMeter
    pool: ProcessPoolExecutor

    def run(self, plan: PhasePlan, index: int) -> Phase:
        """Load for the plan's duration; then, if it posted, wait for the worker."""
        after_id = submission_high_water(self.args.database_url)
        # One second lets every generator process reach its start line.
        start_at = time.time() + 1.0
        jobs = self._jobs(plan, start_at, index)
        futures = [self.pool.submit(run_job, job) for job in jobs]

        time.sleep(max(0.0, start_at - time.time()))
        before = self.meter.sample()
        results = [future.result() for future in futures]
        after = self.meter.sample()

        cores = CpuMeter.cores_used(before, after)
        cores["client"] = round(sum(r.cpu_seconds / r.wall_seconds for r in results), 2)
        merged = _merge([r.kinds for r in results])
        http = {
            kind: http_stats(merged[kind], start_at=start_at, ok=EXPECTED_STATUS[kind])
            for kind in plan.kinds
        }
        phase = Phase(name=plan.name, http=http, cores=cores)
        if CAPTURE in plan.kinds:
            phase.drain = drain_wait(
                self.args.database_url,
                after_id=after_id,
                timeout=self.args.drain_timeout,
            )
            after = self.meter.sample()
        client = sum(r.cpu_seconds for r in results)
        phase.cpu_ms = _cpu_ms(CpuMeter.seconds_used(before, after), client, phase)
        return phase

    def _jobs(self, plan: PhasePlan, start_at: float, index: int) -> list[Job]:
        connections, generators = self.args.connections, self.args.generators
        share, extra = divmod(connections, generators)
        jobs, first_slot = [], 0
        for g in range(generators):
            threads = share + (1 if g < extra else 0)
            jobs.append(
                Job(
                    host="127.0.0.1",
                    port=self.port,
                    form_key=FORM_KEY,
                    kinds=plan.kinds,
                    threads=threads,
                    start_at=start_at,
                    duration=plan.duration,
                    rate=plan.rate / connections,
                    first_slot=first_slot,
                    slots=connections,
                    seq_base=index * IDENTITIES_PER_PHASE,
                )
            )
            first_slot += threads
        return jobs


def _cpu_ms(seconds: dict[str, float], client: float, phase: Phase) -> dict:
    """CPU milliseconds per request (the worker's: per submission).

    Counted from the phase's start until the worker drained its queue, so
    the cost does not depend on how busy the machine was: a request's CPU
    is the same on a quiet machine, only the waiting changes.
    """
    requests = max(sum(stats.requests for stats in phase.http.values()), 1)
    cost = {
        part: round(seconds[part] * 1000 / requests, 2)
        for part in ("gunicorn", "postgres", "redis")
    }
    cost["client"] = round(client * 1000 / requests, 2)
    if phase.drain and phase.drain.submissions:
        cost["celery"] = round(seconds["celery"] * 1000 / phase.drain.submissions, 2)
    return cost


def _merge(per_job: list[dict[str, KindResult]]) -> dict[str, KindResult]:
    merged: dict[str, KindResult] = {}
    for kinds in per_job:
        for kind, result in kinds.items():
            merged.setdefault(kind, KindResult()).add(result)
    return merged


if __name__ == "__main__":
    sys.exit(main())
