"""Numbers from a phase: HTTP latency, CPU use and post-to-level latency."""

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2.extensions import cursor as Cursor

from loadgen import KindResult

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values; nan when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class HttpStats:
    requests: int
    errors: int
    unexpected_status: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]


def http_stats(result: KindResult, *, start_at: float, ok: set[int]) -> HttpStats:
    """Throughput counts only expected answers, over the measured time."""
    latencies = sorted(result.latencies_ms)
    good = sum(n for status, n in result.statuses.items() if status in ok)
    seconds = max(result.last_end - start_at, 1e-9)
    return HttpStats(
        requests=len(latencies),
        errors=result.errors,
        unexpected_status=len(latencies) - good,
        seconds=round(seconds, 3),
        rps=good / seconds,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else math.nan,
        statuses={str(k): v for k, v in sorted(result.statuses.items())},
    )


@dataclass(frozen=True)
class CpuSample:
    # CPU seconds by group, then by pid: a pid that appears between two
    # samples counts whole, one that disappears is left out.
    groups: dict[str, dict[int, float]]
    machine_busy: float
    machine_total: float


class CpuMeter:
    """CPU use of each part of the stack and of the whole machine, from /proc.

    On a small machine the generator, gunicorn, the worker, PostgreSQL and
    Redis share the same cores, and so does whatever else runs there;
    splitting the CPU shows who took it.
    """

    def __init__(self, *, trees: dict[str, int], database_url: str, redis_pid: int):
        self.trees = trees
        self.database_url = database_url
        self.redis_pid = redis_pid

    def sample(self) -> CpuSample:
        parents = _parent_map()
        groups = {
            name: {pid: _cpu(pid) for pid in _descendants(root, parents)}
            for name, root in self.trees.items()
        }
        backends = _query(self.database_url, BACKENDS)
        groups["postgres"] = {pid: _cpu(pid) for (pid,) in backends}
        groups["redis"] = {self.redis_pid: _cpu(self.redis_pid)}
        busy, total = _machine_cpu()
        return CpuSample(groups=groups, machine_busy=busy, machine_total=total)

    @staticmethod
    def seconds_used(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """CPU seconds each group used between two samples."""
        used = {}
        for name, pids in after.groups.items():
            earlier = before.groups.get(name, {})
            used[name] = sum(cpu - earlier.get(pid, 0.0) for pid, cpu in pids.items())
        return used

    @staticmethod
    def cores_used(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """Average cores each group, and the machine, used between samples."""
        cpus = os.cpu_count() or 1
        wall = max((after.machine_total - before.machine_total) / cpus, 1e-9)
        used = {
            name: round(seconds / wall, 2)
            for name, seconds in CpuMeter.seconds_used(before, after).items()
        }
        used["machine"] = round((after.machine_busy - before.machine_busy) / wall, 2)
        return used


# The bench database's backends, without the one asking.
BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


def _parent_map() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat_fields(int(entry.name))
            if stat:
                parents[int(entry.name)] = int(stat[1])
    return parents


def _descendants(root: int, parents: dict[int, int]) -> list[int]:
    found = []
    for pid in parents:
        node = pid
        while node and node != root:
            node = parents.get(node, 0)
        if node == root:
            found.append(pid)
    return found


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; the fields after it never do.
    return text.rsplit(")", 1)[1].split()


def _cpu(pid: int) -> float:
    stat = _stat_fields(pid)
    if not stat:
        return 0.0
    # utime and stime, fields 14 and 15 of /proc/<pid>/stat.
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS


def machine_cores_busy(seconds: float) -> float:
    """Cores the machine keeps busy over `seconds`: load from elsewhere."""
    busy_before, total_before = _machine_cpu()
    time.sleep(seconds)
    busy_after, total_after = _machine_cpu()
    wall = (total_after - total_before) / (os.cpu_count() or 1)
    return round((busy_after - busy_before) / max(wall, 1e-9), 2)


def _machine_cpu() -> tuple[float, float]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def submission_high_water(database_url: str) -> int:
    """The newest submission id; a phase's submissions come after it."""
    rows = _query(database_url, "SELECT coalesce(max(id), 0) FROM campaigns_submission")
    return int(rows[0][0])


@dataclass(frozen=True)
class Drain:
    submissions: int
    scored: int
    failed: int
    pending_at_stop: int
    drain_seconds: float
    timed_out: bool
    # The first hop alone: received until the worker made the lead.
    post_to_lead_p50_ms: float
    post_to_lead_p95_ms: float
    post_to_level_p50_ms: float
    post_to_level_p95_ms: float
    post_to_level_p99_ms: float
    post_to_level_max_ms: float
    levels: dict[str, int]


# A submission is done when its lead carries a fresh score (and so a level),
# or when it failed; spam never reaches the worker.
PROGRESS = """
SELECT count(*),
       count(*) FILTER (WHERE l.scored_at IS NOT NULL AND NOT l.score_stale),
       count(*) FILTER (WHERE s.status IN ('failed', 'spam'))
FROM campaigns_submission s LEFT JOIN leads_lead l ON l.id = s.lead_id
WHERE s.id > %s
"""
# Both timestamps come from the server's clock: received_at when the capture
# request stored the submission, scored_at when the worker scored the lead.
LATENCY = """
SELECT extract(epoch FROM l.scored_at - s.received_at) * 1000,
       extract(epoch FROM s.processed_at - s.received_at) * 1000,
       l.level
FROM campaigns_submission s JOIN leads_lead l ON l.id = s.lead_id
WHERE s.id > %s AND l.scored_at IS NOT NULL AND NOT l.score_stale
"""


def drain_wait(database_url: str, *, after_id: int, timeout: float) -> Drain:
    """Poll until every submission after `after_id` is scored, or timeout."""
    started = time.monotonic()
    conn = psycopg2.connect(database_url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            total, scored, failed = _fetch(cursor, PROGRESS, after_id)[0]
            pending_at_stop = total - scored - failed
            while scored + failed < total and time.monotonic() - started < timeout:
                time.sleep(0.1)
                total, scored, failed = _fetch(cursor, PROGRESS, after_id)[0]
            drain_seconds = time.monotonic() - started
            rows = _fetch(cursor, LATENCY, after_id)
    finally:
        conn.close()

    latencies = sorted(float(ms) for ms, _, _ in rows)
    to_lead = sorted(float(ms) for _, ms, _ in rows)
    levels: dict[str, int] = {}
    for _, _, level in rows:
        levels[level] = levels.get(level, 0) + 1
    return Drain(
        submissions=total,
        scored=scored,
        failed=failed,
        pending_at_stop=pending_at_stop,
        drain_seconds=round(drain_seconds, 2),
        timed_out=scored + failed < total,
        post_to_lead_p50_ms=percentile(to_lead, 50),
        post_to_lead_p95_ms=percentile(to_lead, 95),
        post_to_level_p50_ms=percentile(latencies, 50),
        post_to_level_p95_ms=percentile(latencies, 95),
        post_to_level_p99_ms=percentile(latencies, 99),
        post_to_level_max_ms=latencies[-1] if latencies else math.nan,
        levels=levels,
    )


def _fetch(cursor: Cursor, query: str, *params: object) -> list[tuple]:
    cursor.execute(query, params)
    return cursor.fetchall()


def _query(database_url: str, query: str, *params: object) -> list[tuple]:
    conn = psycopg2.connect(database_url, connect_timeout=5)
    try:
        with conn.cursor() as cursor:
            return _fetch(cursor, query, *params)
    finally:
        conn.close()
