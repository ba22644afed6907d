"""Benchmark a full rescore of 1,000,000 leads and 10,000,000 interactions.

Run on demand, never by the test suite:

    .venv/bin/python bench/rescore.py [--help]

It builds its own database (leadcrm_rescore_bench, dropped and recreated),
bulk-loads leads and interactions with SQL, starts gunicorn and a Celery
worker with production settings, measures the capture endpoint's latency
idle, then activates a changed rule set (as a marketer saving rules does)
and measures the same endpoint while the worker's rescore job runs. It also
times the one-lead recompute. Ratios are against baselines of the same run.
"""

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg2

from loadgen import CAPTURE, Job, KindResult, run_job
from measure import drain_wait, http_stats, submission_high_water
from stack import (
    ROOT,
    StackConfig,
    app_env,
    app_prepare,
    database_recreate,
    free_port,
    redis_flush,
    web_ready,
    web_service,
    worker_ready,
    worker_service,
)

FORM_KEY = "bench"
KINDS = (
    "page_visit", "page_visit", "page_visit", "email_open", "email_open",
    "email_click", "form_submit", "document_download", "webinar_registration",
    "event_attendance", "demo_request", "chat",
)  # fmt: skip

LOAD_LEADS = """
INSERT INTO leads_lead (
    email, phone, external_id, first_name, last_name, full_name, company,
    job_title, industry, city, country, source, origin, custom,
    first_touch_utm, last_touch_utm, level, status, score, engagement_score,
    fit_score, bant_score, temperature, score_breakdown, score_stale,
    search_text, last_interaction_at, created_at, updated_at)
SELECT
    'lead' || g || '@example.vn',
    CASE WHEN g %% 3 = 0 THEN '+849' || lpad((g %% 100000000)::text, 8, '0')
         ELSE '' END,
    '', '', '', 'Nguyễn Văn ' || g,
    CASE WHEN g %% 2 = 0 THEN 'Công ty ' || (g %% 5000) ELSE '' END,
    CASE WHEN g %% 4 = 0 THEN 'Giám đốc' WHEN g %% 4 = 1 THEN 'Kế toán'
         ELSE '' END,
    '', CASE WHEN g %% 5 = 0 THEN 'Hà Nội' ELSE '' END, 'Việt Nam',
    'bench', '', '{}'::jsonb, '{}'::jsonb, '{}'::jsonb, 'iql', 'open',
    0, 0, 0, 0, 'cold', '[]'::jsonb, true, 'nguyen van ' || g, now(),
    now() - (g %% 700) * interval '1 day', now()
FROM generate_series(1, %(leads)s) AS g
"""

LOAD_INTERACTIONS = """
INSERT INTO leads_interaction (
    lead_id, kind, channel, occurred_at, subject, quantity, details,
    idempotency_key, created_at)
SELECT
    l.first_id + (g %% %(leads)s),
    (%(kinds)s::text[])[1 + (g * 7919) %% %(nkinds)s],
    'web_form',
    now() - ((g * 104729) %% 365) * interval '1 day'
          - ((g * 31) %% 86400) * interval '1 second',
    '', 1, '{}'::jsonb, '', now()
FROM generate_series(0::bigint, %(interactions)s - 1) AS g,
     (SELECT min(id) AS first_id FROM leads_lead) AS l
"""

# The rule change a marketer makes: document downloads count more and a
# company address adds fit. Enough to move scores and some levels.
CHANGE_RULES = """
import django
django.setup()
from scoring.models import EngagementRule, FitRule
from scoring.rulesets import rule_set_activate, rule_set_draft
draft = rule_set_draft(name="Bench change")
EngagementRule.objects.filter(rule_set=draft, kind="document_download").update(
    points=15
)
FitRule.objects.create(
    rule_set=draft, field="email", operator="company_mail", points=5
)
job = rule_set_activate(rule_set=draft)
print(job.pk)
"""

ONE_LEAD = """
import django, json, random, statistics, time, logging
django.setup()
logging.disable(logging.INFO)
from leads.models import Lead
from scoring.services import rescore_one
top = Lead.objects.order_by("-pk").values_list("pk", flat=True).first()
rng = random.Random(7)
ids = [rng.randint(1, top) for _ in range({n})]
rescore_one(lead_id=ids[0])
times = []
for lead_id in ids:
    started = time.perf_counter()
    rescore_one(lead_id=lead_id)
    times.append((time.perf_counter() - started) * 1000)
times.sort()
print(json.dumps({{"median_ms": statistics.median(times),
                  "p95_ms": times[int(len(times) * 0.95)]}}))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--rate", type=float, default=20, help="capture req/s")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--timeout", type=float, default=600, help="rescore limit")
    parser.add_argument("--one-lead-samples", type=int, default=500)
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/leadcrm_rescore_bench",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="leadcrm-rescore-"))
    config = StackConfig(
        database_url=args.database_url,
        redis_url=args.redis_url,
        queue=f"rescore-bench-{uuid.uuid4().hex[:6]}",
        form_key=FORM_KEY,
        work_dir=work_dir,
        web_workers=2,
        web_worker_class="gthread",
        web_threads=4,
        # As docker-compose runs it: one process per core for the job's
        # slices (LEADCRM_RESCORE_PARALLEL, 2), and one for posts meanwhile.
        worker_concurrency=3,
        log_level="WARNING",
    )
    env = app_env(config)
    report: dict = {"leads": args.leads, "interactions": args.interactions}

    database_recreate(config.database_url)
    redis_flush(config.redis_url)
    app_prepare(config, env)
    report["load_seconds"] = bulk_load(config.database_url, args)
    print(f"Loaded in {report['load_seconds']:.1f} s", flush=True)

    port = free_port()
    web = web_service(config, env, port)
    worker = worker_service(config, env)
    try:
        web.start(web_ready(port))
        worker.start(worker_ready(worker))
        report.update(measure(args, config, env, port, worker.pid))
    finally:
        worker.stop()
        web.stop()
        redis_flush(config.redis_url)

    print_report(report)
    out = ROOT / "bench" / "results" / f"rescore-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"Written to {out.relative_to(ROOT)}")
    return 0


def bulk_load(database_url: str, args: argparse.Namespace) -> float:
    """Load as a restore does: secondary indexes built once at the end, no
    per-row foreign key triggers (the rows reference leads by
    construction), then VACUUM ANALYZE and a checkpoint, so the rescore
    starts from a table in its steady state, not from autovacuum's first
    pass."""
    started = time.monotonic()
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    params = {
        "leads": args.leads,
        "interactions": args.interactions,
        "kinds": list(KINDS),
        "nkinds": len(KINDS),
    }
    with conn.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        indexes = secondary_indexes(cursor, ("leads_lead", "leads_interaction"))
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(LOAD_LEADS, params)
        cursor.execute(LOAD_INTERACTIONS, params)
        cursor.execute("SET session_replication_role = DEFAULT")
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE leads_lead")
        cursor.execute("VACUUM ANALYZE leads_interaction")
        # The load's gigabytes of WAL would otherwise be checkpointed during
        # the idle measurement, and its fsyncs inflate the baseline.
        cursor.execute("CHECKPOINT")
    conn.close()
    return time.monotonic() - started


def secondary_indexes(cursor, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Name and definition of every index but the primary keys."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY(%s) AND NOT x.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        """,
        [list(tables)],
    )
    return cursor.fetchall()


def measure(args, config: StackConfig, env: dict, port: int, worker_pid: int) -> dict:
    result: dict = {}

    idle = capture_load(port, args.rate, args.idle_seconds)
    result["capture_idle"] = stats(idle)

    # Posts from here on are processed while the job runs, or wait for it.
    before_job = submission_high_water(config.database_url)
    started = time.monotonic()
    job_id = int(run_python(CHANGE_RULES, env).strip().splitlines()[-1])
    during = KindResult()
    peak_rss = 0
    progress = {}
    while time.monotonic() - started < args.timeout:
        chunk = capture_load(port, args.rate, 5)
        during.add(chunk)
        peak_rss = max(peak_rss, rss_kib(worker_pid))
        progress = job_progress(config.database_url, job_id)
        print(
            f"  rescore {progress['done']:>9,}/{progress['total']:,}"
            f" {progress['status']}",
            flush=True,
        )
        if progress["status"] in ("done", "failed"):
            break
    result["rescore"] = {
        **progress,
        "seconds": progress.get("seconds"),
        "worker_peak_rss_mib": round(peak_rss / 1024, 1),
    }
    result["capture_during"] = stats(during)
    drained = drain_wait(config.database_url, after_id=before_job, timeout=60)
    result["post_to_level_during"] = {
        "submissions": drained.submissions,
        "scored": drained.scored,
        "p50_ms": round(drained.post_to_level_p50_ms),
        "p95_ms": round(drained.post_to_level_p95_ms),
        "max_ms": round(drained.post_to_level_max_ms),
    }
    result["one_lead"] = json.loads(
        run_python(ONE_LEAD.format(n=args.one_lead_samples), env).splitlines()[-1]
    )
    return result


# Each load call posts identities from a block of its own: every post is a
# new lead, as in the capture benchmark.
_IDENTITY_BLOCKS = itertools.count(random.randrange(100) * 1_000_000, 1_000_000)


def capture_load(port: int, rate: float, seconds: float) -> KindResult:
    start_at = time.time() + 0.5
    job = Job(
        host="127.0.0.1",
        port=port,
        form_key=FORM_KEY,
        kinds=(CAPTURE,),
        threads=2,
        start_at=start_at,
        duration=seconds,
        rate=rate / 2,
        first_slot=0,
        slots=2,
        seq_base=next(_IDENTITY_BLOCKS),
    )
    with ProcessPoolExecutor(max_workers=1) as pool:
        outcome = pool.submit(run_job, job).result()
    return outcome.kinds[CAPTURE]


def stats(result: KindResult) -> dict:
    start = time.time()
    values = http_stats(result, start_at=start - 1, ok={202, 303})
    return {
        "requests": values.requests,
        "errors": values.errors + values.unexpected_status,
        "p50_ms": round(values.p50_ms, 1),
        "p95_ms": round(values.p95_ms, 1),
        "p99_ms": round(values.p99_ms, 1),
    }


def run_python(code: str, env: dict) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    return completed.stdout


def job_progress(database_url: str, job_id: int) -> dict:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT status, done, total, level_changes,"
                " extract(epoch FROM coalesce(finished_at, now()) - started_at)"
                " FROM scoring_rescorejob WHERE id = %s",
                [job_id],
            )
            status, done, total, changes, seconds = cursor.fetchone()
    finally:
        conn.close()
    return {
        "status": status,
        "done": done,
        "total": total,
        "level_changes": changes,
        "seconds": round(float(seconds), 1) if seconds is not None else None,
    }


def rss_kib(root_pid: int) -> int:
    """Resident memory of a process and its children (the prefork pool)."""
    total = 0
    for pid in [root_pid, *children(root_pid)]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def print_report(report: dict) -> None:
    idle, during = report["capture_idle"], report["capture_during"]
    rescore, one = report["rescore"], report["one_lead"]
    ratio = during["p95_ms"] / idle["p95_ms"] if idle["p95_ms"] else float("nan")
    print()
    print(f"Data: {report['leads']:,} leads, {report['interactions']:,} interactions")
    print(f"Bulk load:          {report['load_seconds']:.1f} s")
    print(
        f"Full rescore:       {rescore['seconds']} s for {rescore['done']:,} leads"
        f" ({rescore['status']}, {rescore['level_changes']:,} level changes,"
        f" worker peak RSS {rescore['worker_peak_rss_mib']} MiB)"
    )
    print(
        f"Capture idle:       p50 {idle['p50_ms']} ms, p95 {idle['p95_ms']} ms"
        f" ({idle['requests']} requests, {idle['errors']} errors)"
    )
    print(
        f"Capture in rescore: p50 {during['p50_ms']} ms, p95 {during['p95_ms']} ms"
        f" ({during['requests']} requests, {during['errors']} errors)"
    )
    print(f"Capture p95 during / idle: {ratio:.2f}")
    to_level = report["post_to_level_during"]
    print(
        f"Post to level, posts during the rescore: p50 {to_level['p50_ms']} ms,"
        f" p95 {to_level['p95_ms']} ms, max {to_level['max_ms']} ms"
        f" ({to_level['scored']:,} of {to_level['submissions']:,} scored)"
    )
    print(
        f"One-lead recompute: median {one['median_ms']:.2f} ms,"
        f" p95 {one['p95_ms']:.2f} ms"
    )
    goals = [
        ("bulk load <= 180 s", report["load_seconds"] <= 180),
        ("full rescore <= 120 s", (rescore["seconds"] or 1e9) <= 120
         and rescore["status"] == "done"),
        ("capture p95 during <= 2 x idle", ratio <= 2),
        ("one-lead recompute median <= 10 ms", one["median_ms"] <= 10),
    ]  # fmt: skip
    for goal, ok in goals:
        print(f"  {'PASS' if ok else 'FAIL'}  {goal}")
    report["goals"] = {goal: ok for goal, ok in goals}
    report["max_rss_bench_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(main())
