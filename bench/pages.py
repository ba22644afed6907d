"""Benchmark the marketers' pages on 1,000,000 leads and 10,000,000
interactions.

Run on demand, never by the test suite:

    .venv/bin/python bench/pages.py [--help]

It builds its own database (leadcrm_pages_bench, dropped and recreated),
bulk-loads leads and interactions with the loader of rescore.py, gives the
leads a funnel (sources, campaigns, levels with their history, hand-off times,
opportunities), builds the dashboard summary, starts gunicorn with production
settings and requests each page of PAGES one at a time over a keep-alive
connection, signed in as a marketer. It prints p50/p95/max per page and the
ratio of each p95 to /healthz's, measured in the same run.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from measure import percentile
from rescore import bulk_load
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
)


@dataclass(frozen=True)
class Page:
    name: str
    # Formatted with the bench's ids: {campaign} is a campaign with leads.
    path: str
    goal_ms: float | None = None
    # Whose session requests the page: one of PREPARE's "sessions".
    user: str = "marketer"


BASELINE = Page("healthz", "/healthz")
# One line a page.
PAGES = (
    Page("MQL inbox, rep", "/sales/inbox/", goal_ms=150, user="rep"),
    Page("SQL queue, rep", "/sales/queue/", goal_ms=150, user="rep"),
    Page("SQL queue, manager", "/sales/queue/", goal_ms=150, user="manager"),
    Page("team board, manager", "/sales/team/", user="manager"),
    Page("dashboard", "/dashboard/", goal_ms=200),
    Page("dashboard, 12 months", "/dashboard/?period=365d", goal_ms=200),
    Page(
        "dashboard, campaign and source",
        "/dashboard/?period=365d&campaign={campaign}&source=ads",
        goal_ms=200,
    ),
    Page("dashboard CSV, weekly", "/dashboard/?export=weekly"),
    Page("campaign results", "/campaigns/{campaign}/results/"),
    Page("leads list", "/leads/"),
)

CAMPAIGNS = 20
SOURCES = ("web", "ads", "event", "referral", "social", "import")
# Two sales teams of ten reps each; the first keeps an unassigned pool.
TEAMS = 2
REPS_PER_TEAM = 10

# Twenty campaigns with budgets, two sales teams with a manager and their
# reps, and a session for the marketer, the first team's first rep and its
# manager: the ORM makes them as the product would. Prints the campaign ids,
# the reps' ids and teams in order, and the session keys.
PREPARE = """
import django, json
django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from campaigns.models import Campaign
from leads.models import Team, TeamMember

def person(username, role):
    # No usable password: the bench signs in through sessions alone.
    user = User.objects.create_user(username, email=f"{{username}}@example.vn")
    user.groups.add(Group.objects.get(name=role))
    return user

def session_of(user):
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key

ids = [
    Campaign.objects.create(
        name=f"Bench campaign {{n}}", kind="webinar", budget=50_000_000 + n * 1_000_000
    ).pk
    for n in range({campaigns})
]
marketer = person("bench-marketer", "Marketer")
reps, rep_teams, managers = [], [], []
for t in range({teams}):
    manager = person(f"bench-manager-{{t}}", "Sales manager")
    team = Team.objects.create(
        name=f"Bench team {{t}}", manager=manager, uses_pool=t == 0
    )
    managers.append(manager)
    for r in range({reps_per_team}):
        rep = person(f"bench-rep-{{t}}-{{r}}", "Sales rep")
        TeamMember.objects.create(team=team, user=rep, capacity=50)
        reps.append(rep.pk)
        rep_teams.append(team.pk)
sessions = {{
    "marketer": session_of(marketer),
    "rep": session_of(User.objects.get(pk=reps[0])),
    "manager": session_of(managers[0]),
}}
print(json.dumps({{"campaigns": ids, "reps": reps, "rep_teams": rep_teams,
                  "sessions": sessions}}))
"""

# --reuse: the data of an earlier run, with new sessions for its people.
SESSIONS = """
import django, json
django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from campaigns.models import Campaign

def session_of(username):
    user = User.objects.get(username=username)
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key

first = Campaign.objects.filter(name__startswith="Bench campaign ").order_by("pk")[0]
sessions = {
    "marketer": session_of("bench-marketer"),
    "rep": session_of("bench-rep-0-0"),
    "manager": session_of("bench-manager-0"),
}
print(json.dumps({"campaigns": [first.pk], "sessions": sessions}))
"""

REFRESH = """
import django, time, json
django.setup()
from dashboard.services import summary_refresh
from dashboard.models import LeadDaySummary
started = time.monotonic()
summary_refresh(full=True)
full = time.monotonic() - started
started = time.monotonic()
summary_refresh()
quiet = time.monotonic() - started
print(json.dumps({"full_seconds": full, "incremental_seconds": quiet,
                  "rows": LeadDaySummary.objects.count()}))
"""

# A funnel the dashboard can count: a source each, campaigns that run for
# five weeks three at a time (last touch differs for one lead in five), 80 %
# IQL, 12 % MQL, 8 % SQL, one lead in twenty recycled after MQL, hand-off
# times for MQLs and an opportunity for half of the SQLs.
FUNNEL = """
UPDATE leads_lead AS l SET
    source = (%(sources)s::text[])[1 + l.id %% %(nsources)s],
    first_touch_campaign_id = CASE WHEN l.id %% 10 = 0 THEN NULL
        ELSE c.first_id + ((x.day / 35 + l.id %% 3) %% %(campaigns)s) END,
    last_touch_campaign_id = CASE WHEN l.id %% 10 = 0 THEN NULL
        WHEN l.id %% 5 = 1
        THEN c.first_id + ((x.day / 35 + l.id %% 3 + 1) %% %(campaigns)s)
        ELSE c.first_id + ((x.day / 35 + l.id %% 3) %% %(campaigns)s) END,
    level = CASE WHEN x.r < 80 THEN 'iql' WHEN x.r < 92 THEN 'mql' ELSE 'sql' END,
    temperature = CASE WHEN l.id %% 10 < 6 THEN 'cold'
        WHEN l.id %% 10 < 9 THEN 'warm' ELSE 'hot' END,
    mql_at = CASE WHEN x.r >= 75
        THEN l.created_at + (l.id %% 72) * interval '1 hour' END,
    accepted_at = CASE WHEN x.r >= 80 AND l.id %% 5 <> 0
        THEN l.created_at + (l.id %% 72 + l.id %% 48) * interval '1 hour' END,
    first_contacted_at = CASE WHEN x.r >= 80 AND l.id %% 3 <> 0
        THEN l.created_at + (l.id %% 72 + l.id %% 96) * interval '1 hour' END,
    -- Long settled: only what changes after the load is news to the summary.
    updated_at = l.created_at
FROM (SELECT min(id) AS first_id FROM campaigns_campaign
      WHERE name LIKE 'Bench campaign %%') AS c,
     (SELECT id, (id * 7919) %% 100 AS r,
             (extract(epoch FROM now() - created_at) / 86400)::int AS day
      FROM leads_lead) AS x
WHERE x.id = l.id
"""

HISTORY = """
INSERT INTO leads_levelchange (lead_id, from_level, to_level, rule, action,
    reason_code, reason, score, created_at)
SELECT id, 'iql', 'mql', 'bench', 'automatic', '', '', 60, mql_at
FROM leads_lead WHERE mql_at IS NOT NULL
UNION ALL
SELECT id, 'mql', 'sql', '', 'move', '', '', 80, mql_at + interval '2 days'
FROM leads_lead WHERE level = 'sql'
UNION ALL
SELECT id, 'mql', 'iql', '', 'recycle', 'not_now', '', 40, mql_at + interval '1 day'
FROM leads_lead WHERE mql_at IS NOT NULL AND level = 'iql'
"""

# The hand-off, as assignment leaves it: every open MQL and SQL goes round
# robin to the twenty reps (a rep owns one in twenty, thousands; FUNNEL
# decides level and acceptance by id modulo 100, so the rep turns with each
# hundred ids, and owning says nothing of either), with its
# team, assignment time, SLA deadlines (4 hours to accept, 24 to first
# contact, so late acceptances are breaches) and speed to lead. One in ten
# of the first team's leads not yet accepted waits unowned in its pool.
# Scores as scoring leaves sales-ready leads: 60 to 100.
HANDOFF = """
UPDATE leads_lead AS l SET
    owner_id = CASE
        WHEN l.accepted_at IS NULL AND x.team = (%(rep_teams)s::int[])[1]
             AND (l.id / 100) %% 10 = 0
        THEN NULL ELSE x.rep END,
    team_id = x.team,
    assigned_at = l.mql_at,
    accept_due_at = l.mql_at + interval '4 hours',
    contact_due_at = l.mql_at + interval '24 hours',
    time_to_accept = l.accepted_at - l.mql_at,
    time_to_contact = l.first_contacted_at - l.mql_at,
    score = 60 + (l.id * 37) %% 41
FROM (SELECT id,
             (%(reps)s::int[])[1 + (id + id / 100) %% %(nreps)s] AS rep,
             (%(rep_teams)s::int[])[1 + (id + id / 100) %% %(nreps)s] AS team
      FROM leads_lead) AS x
WHERE x.id = l.id AND l.level IN ('mql', 'sql') AND l.status = 'open'
    AND l.mql_at IS NOT NULL
"""

OPPORTUNITIES = """
INSERT INTO leads_opportunity (lead_id, name, amount, currency,
    expected_close_on, stage, lost_reason, lost_note, created_at, closed_at,
    updated_at)
SELECT id, 'Deal ' || id, 100000000 + (id %% 50) * 10000000, 'VND',
    (created_at + interval '60 days')::date,
    CASE WHEN id %% 8 = 0 THEN 'won' WHEN id %% 8 = 2 THEN 'lost'
         ELSE 'proposal' END,
    CASE WHEN id %% 8 = 2 THEN 'no_budget' ELSE '' END, '',
    mql_at + interval '3 days',
    CASE WHEN id %% 8 IN (0, 2) THEN mql_at + interval '30 days' END,
    now()
FROM leads_lead WHERE level = 'sql' AND id %% 2 = 0
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=100, help="per page")
    parser.add_argument("--warmup", type=int, default=5, help="per page")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/leadcrm_pages_bench",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again on the data of an earlier run (migrated first)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="leadcrm-pages-"))
    config = StackConfig(
        database_url=args.database_url,
        redis_url=args.redis_url,
        queue=f"pages-bench-{uuid.uuid4().hex[:6]}",
        form_key="bench",
        work_dir=work_dir,
        web_workers=2,
        web_worker_class="gthread",
        web_threads=4,
        worker_concurrency=1,
        log_level="WARNING",
    )
    env = app_env(config)
    report: dict = {"leads": args.leads, "interactions": args.interactions}

    if args.reuse:
        redis_flush(config.redis_url)
        # The form exists already: migrate and collect only.
        for command in ("migrate", "collectstatic"):
            subprocess.run(
                [sys.executable, "manage.py", command, "--noinput", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
        prepared = json.loads(run_python(SESSIONS, env))
        report.update(reused=True, load_seconds=0.0, funnel_seconds=0.0)
        report["summary"] = json.loads(run_python(REFRESH, env))
    else:
        prepared = build(config, env, args, report)
    measure_all(config, env, args, report, prepared)

    print_report(report)
    out = ROOT / "bench" / "results" / f"pages-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"Written to {out.relative_to(ROOT)}")
    return 1 if any(ok is False for ok in report["goals"].values()) else 0


def build(config: StackConfig, env: dict, args, report: dict) -> dict:
    database_recreate(config.database_url)
    redis_flush(config.redis_url)
    app_prepare(config, env)
    prepared = json.loads(
        run_python(
            PREPARE.format(
                campaigns=CAMPAIGNS, teams=TEAMS, reps_per_team=REPS_PER_TEAM
            ),
            env,
        )
    )
    report["load_seconds"] = bulk_load(config.database_url, args)
    print(f"Loaded in {report['load_seconds']:.1f} s", flush=True)
    report["funnel_seconds"] = load_funnel(config.database_url, prepared)
    print(f"Funnel data in {report['funnel_seconds']:.1f} s", flush=True)
    report["summary"] = json.loads(run_python(REFRESH, env))
    print(f"Summary: {report['summary']}", flush=True)
    return prepared


def measure_all(config: StackConfig, env: dict, args, report: dict, prepared) -> None:
    port = free_port()
    web = web_service(config, env, port)
    ids = {"campaign": prepared["campaigns"][0]}
    try:
        web.start(web_ready(port))
        # The machine may be shared: the load average says how much.
        report["load_before"] = [round(n, 2) for n in os.getloadavg()]
        report["pages"] = {
            page.name: measure_page(
                port, page, ids, prepared["sessions"][page.user], args
            )
            for page in (BASELINE, *PAGES)
        }
        report["load_after"] = [round(n, 2) for n in os.getloadavg()]
    finally:
        web.stop()
        redis_flush(config.redis_url)


def load_funnel(database_url: str, prepared: dict) -> float:
    started = time.monotonic()
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    params = {
        "sources": list(SOURCES),
        "nsources": len(SOURCES),
        "campaigns": CAMPAIGNS,
    }
    handoff = {
        "reps": prepared["reps"],
        "rep_teams": prepared["rep_teams"],
        "nreps": len(prepared["reps"]),
    }
    with conn.cursor() as cursor:
        cursor.execute(FUNNEL, params)
        cursor.execute(HANDOFF, handoff)
        cursor.execute(HISTORY, {})
        cursor.execute(OPPORTUNITIES, {})
        for table in ("leads_lead", "leads_levelchange", "leads_opportunity"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    conn.close()
    return time.monotonic() - started


def measure_page(port: int, page: Page, ids: dict, session: str, args) -> dict:
    """Sequential GETs over one keep-alive connection: latency alone, with no
    queueing behind other requests."""
    path = page.path.format(**ids)
    headers = {"Cookie": f"sessionid={session}", "Accept-Language": "en"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times: list[float] = []
    statuses: dict[int, int] = {}
    size = 0
    for n in range(args.warmup + args.requests):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if n >= args.warmup:
            times.append(elapsed)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            size = len(body)
    conn.close()
    times.sort()
    return {
        "path": path,
        "requests": len(times),
        "statuses": statuses,
        "bytes": size,
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "max_ms": round(times[-1], 1),
        "goal_ms": page.goal_ms,
        "user": page.user,
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
    return completed.stdout.strip().splitlines()[-1]


def print_report(report: dict) -> None:
    pages = report["pages"]
    baseline = pages[BASELINE.name]["p95_ms"]
    print()
    print(f"Data: {report['leads']:,} leads, {report['interactions']:,} interactions")
    print(
        f"Bulk load {report['load_seconds']:.1f} s, funnel data"
        f" {report['funnel_seconds']:.1f} s, summary rebuild"
        f" {report['summary']['full_seconds']:.1f} s"
        f" ({report['summary']['rows']:,} rows), quiet incremental refresh"
        f" {report['summary']['incremental_seconds']:.2f} s"
    )
    print(
        "Load average (1, 5, 15 min) before the requests"
        f" {report['load_before']}, after {report['load_after']}"
    )
    print(f"{'page':30} {'user':>9} {'status':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'max ms':>7} {'goal':>5} {'p95/healthz':>11}")  # fmt: skip
    goals = {}
    for name, result in pages.items():
        statuses = ",".join(str(status) for status in sorted(result["statuses"]))
        ratio = result["p95_ms"] / baseline if baseline else float("nan")
        goal = f"{result['goal_ms']:.0f}" if result["goal_ms"] is not None else "-"
        print(
            f"{name:30} {result.get('user', '-'):>9} {statuses:>7}"
            f" {result['p50_ms']:>7} {result['p95_ms']:>7} {result['max_ms']:>7}"
            f" {goal:>5} {ratio:>11.1f}"
        )
        if result["goal_ms"] is not None:
            ok = result["p95_ms"] <= result["goal_ms"] and statuses == "200"
            goals[f"{name} p95 <= {result['goal_ms']:.0f} ms"] = ok
    for goal, ok in goals.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {goal}")
    report["goals"] = goals


if __name__ == "__main__":
    sys.exit(main())
