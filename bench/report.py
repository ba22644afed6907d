"""The benchmark's report: goals, the printed summary and the JSON file."""

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loadgen import CAPTURE, HEALTHZ
from measure import Drain, HttpStats

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Phase:
    name: str
    http: dict[str, HttpStats]
    cores: dict[str, float]
    drain: Drain | None = None
    cpu_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "http": {kind: asdict(stats) for kind, stats in self.http.items()},
            "cores": self.cores,
            "cpu_ms_per_request": self.cpu_ms,
            "drain": asdict(self.drain) if self.drain else None,
        }


def build_report(
    *, args: dict[str, object], phases: list[Phase], background: float
) -> dict:
    """Everything a run measured, as plain data; `args` are the run's flags."""
    by_name = {phase.name: phase for phase in phases}
    health = by_name["healthz"].http[HEALTHZ]
    capture = by_name["capture"].http[CAPTURE]
    drain = by_name["capture"].drain
    ratios = {
        "capture_rps_over_healthz_rps": capture.rps / health.rps,
        "capture_p95_over_healthz_p95": capture.p95_ms / health.p95_ms,
    }
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "background_cores_before": background,
        },
        "args": args,
        "phases": {phase.name: phase.as_dict() for phase in phases},
        "ratios": ratios,
        "ceilings": _ceilings(by_name),
        "goals": _goals(capture, ratios, drain),
    }


def _ceilings(by_name: dict[str, Phase]) -> dict[str, float]:
    """Requests per second the CPU alone allows on this machine when idle.

    An estimate: cores divided by the CPU one request costs in every part,
    generator included, ignoring waits. It tells whether a goal is within
    reach of the design before the noise of a shared machine.
    """
    cpus = os.cpu_count() or 1
    health = sum(by_name["healthz"].cpu_ms.values())
    web = sum(ms for part, ms in by_name["capture"].cpu_ms.items() if part != "celery")
    lead = sum(by_name["capture"].cpu_ms.values())
    return {
        "healthz_rps": round(cpus * 1000 / health),
        "capture_rps_worker_idle": round(cpus * 1000 / web),
        "leads_per_second_end_to_end": round(cpus * 1000 / lead),
    }


def _goals(capture: HttpStats, ratios: dict[str, float], drain: Drain) -> list[dict]:
    p2l = drain.post_to_level_p95_ms
    rows = [
        ("capture throughput >= 200 req/s", f"{capture.rps:.0f} req/s",
         capture.rps >= 200),
        ("capture p95 <= 100 ms", f"{capture.p95_ms:.1f} ms",
         capture.p95_ms <= 100),
        ("capture >= 0.5 x healthz throughput",
         f"{ratios['capture_rps_over_healthz_rps']:.2f} x",
         ratios["capture_rps_over_healthz_rps"] >= 0.5),
        ("post-to-level p95 <= 2 s", f"{p2l / 1000:.2f} s",
         p2l <= 2000 and not drain.timed_out),
    ]  # fmt: skip
    return [{"goal": goal, "measured": value, "pass": ok} for goal, value, ok in rows]


def print_report(report: dict) -> None:
    args = report["args"]
    print(
        f"\nLeadCRM capture benchmark, {report['started_at']}, commit "
        f"{report['commit']}, {report['machine']['cpus']} CPUs (busy with other"
        f" work before start: {report['machine']['background_cores_before']:.2f})\n"
        f"gunicorn {args['web_workers']} x {args['worker_class']}"
        f" (threads {args['threads']}), celery concurrency "
        f"{args['worker_concurrency']}, {args['connections']} connections from "
        f"{args['generators']} generator processes, {args['duration']:g} s/phase"
    )
    _print_http(report["phases"])
    _print_cores(report["phases"])
    _print_cpu_ms(report["phases"])
    _print_drains(report["phases"])
    ratios = report["ratios"]
    print(
        f"\ncapture/healthz throughput {ratios['capture_rps_over_healthz_rps']:.2f},"
        f" capture/healthz p95 {ratios['capture_p95_over_healthz_p95']:.2f}"
    )
    c = report["ceilings"]
    print(
        "CPU ceilings if this machine were idle (cores / CPU ms per request):\n"
        f"  healthz {c['healthz_rps']}/s, capture {c['capture_rps_worker_idle']}/s"
        f" with the worker idle, {c['leads_per_second_end_to_end']} leads/s"
        " end to end"
    )
    _print_goals(report)


def _print_http(phases: dict) -> None:
    header = f"{'phase':<8} {'endpoint':<8} {'requests':>8} {'errors':>6} {'req/s':>8}"
    print(f"\n{header} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for name, phase in phases.items():
        for kind, s in phase["http"].items():
            errors = s["errors"] + s["unexpected_status"]
            print(
                f"{name:<8} {kind:<8} {s['requests']:>8} {errors:>6} {s['rps']:>8.1f}"
                f" {s['p50_ms']:>7.1f} {s['p95_ms']:>7.1f} {s['p99_ms']:>7.1f}"
                f" {s['max_ms']:>7.1f}"
            )


def _print_goals(report: dict) -> None:
    print("\nGoals (throughput and latency from the capture phase)")
    for goal in report["goals"]:
        verdict = "PASS" if goal["pass"] else "FAIL"
        print(f"  {verdict}  {goal['goal']:<38} measured {goal['measured']}")
    steady = report["phases"].get("steady")
    if steady:
        d, s = steady["drain"], steady["http"][CAPTURE]
        print(
            f"  info  at a paced {report['args']['steady_rate']:g} req/s: capture"
            f" p95 {s['p95_ms']:.1f} ms, post-to-level p95"
            f" {d['post_to_level_p95_ms'] / 1000:.2f} s"
        )


def _print_cores(phases: dict) -> None:
    print("\nCPU, average cores used (other: processes outside the bench):")
    for name, phase in phases.items():
        c = phase["cores"]
        parts = ("gunicorn", "celery", "postgres", "redis", "client")
        other = c["machine"] - sum(c[part] for part in parts)
        shares = "  ".join(f"{part} {c[part]:.2f}" for part in parts)
        print(f"  {name:<8} {shares}  other {other:.2f}  machine {c['machine']:.2f}")


def _print_cpu_ms(phases: dict) -> None:
    print(
        "\nCPU ms per request, phase start until the queue drained (celery: per"
        " submission);\nthese depend far less than req/s on other load:"
    )
    for name, phase in phases.items():
        c = phase["cpu_ms_per_request"]
        parts = "  ".join(f"{part} {ms:.2f}" for part, ms in c.items())
        print(f"  {name:<8} {parts}")


def _print_drains(phases: dict) -> None:
    print("\nPost-to-level (submission received -> lead scored with a level):")
    for name, phase in phases.items():
        d = phase["drain"]
        if not d:
            continue
        print(
            f"  {name:<8} {d['submissions']} submissions, {d['scored']} scored"
            f" {d['levels']}, {d['failed']} failed; {d['pending_at_stop']} pending"
            f" when load stopped, drained in {d['drain_seconds']:.1f} s"
            f"{' (TIMED OUT)' if d['timed_out'] else ''}\n"
            f"           p50 {d['post_to_level_p50_ms']:.0f} ms"
            f"  p95 {d['post_to_level_p95_ms']:.0f} ms"
            f"  p99 {d['post_to_level_p99_ms']:.0f} ms"
            f"  max {d['post_to_level_max_ms']:.0f} ms"
            f"  (to lead, before scoring: p50 {d['post_to_lead_p50_ms']:.0f} ms"
            f"  p95 {d['post_to_lead_p95_ms']:.0f} ms)"
        )


def write_report(report: dict) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"capture-{stamp}.json"
    text = json.dumps(_without_nan(report), indent=2, default=str, allow_nan=False)
    path.write_text(text + "\n")
    return path


def _without_nan(value: object) -> object:
    # An empty phase has no percentiles; JSON has null, not NaN.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value


def _commit() -> str:
    """HEAD, with "+changes" when the working tree differs from it."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    # Read-only: without optional locks, status never rewrites the index.
    changed = _git("--no-optional-locks", "status", "--porcelain", "-uno")
    return f"{head}+changes" if changed else head


def _git(*argv: str) -> str:
    completed = subprocess.run(
        ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return completed.stdout.strip()
