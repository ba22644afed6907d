"""The load generator: runs in its own processes, never beside the server.

Each process drives a few threads, one keep-alive HTTP connection each,
until a shared deadline: in a closed loop (send, wait for the answer, send
again) to find the throughput, or paced at a fixed rate to see latency at a
load the system can sustain. A paced request that falls behind schedule is
sent late and timed from when it was sent, so pace below saturation.
Only the standard library is used, so the generator's own cost stays small
and easy to reason about; it reports the CPU it used so a run can tell when
the client, not the server, was the limit.
"""

import http.client
import resource
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote_plus

HEALTHZ = "healthz"
CAPTURE = "capture"

FAMILY_NAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ",
    "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý",
)  # fmt: skip
MIDDLE_NAMES = ("Văn", "Thị", "Minh", "Thu", "Ngọc", "Hữu", "Đức", "Thanh")
GIVEN_NAMES = (
    "An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Lan",
    "Linh", "Long", "Mai", "Nam", "Phương", "Quân", "Thảo", "Trang", "Tuấn",
    "Việt", "Yến", "Khoa", "Nhung", "Sơn",
)  # fmt: skip
COMPANIES = ("VinaTech", "Sài Gòn Logistics", "Hà Nội Foods", "Mekong Agri")
JOB_TITLES = ("Giám đốc marketing", "Trưởng phòng kinh doanh", "CEO", "CTO")
CITIES = ("Hồ Chí Minh", "Hà Nội", "Đà Nẵng", "Cần Thơ", "Hải Phòng")
# Two-digit mobile prefixes after +84 whose every 7-digit suffix is a valid
# number for phonenumbers: 25 x 10 million unique phones.
PHONE_PREFIXES = (
    "90", "91", "93", "94", "96", "97", "98", "32", "33", "34", "35", "36",
    "37", "38", "39", "70", "76", "77", "78", "79", "81", "82", "83", "84", "85",
)  # fmt: skip
PHONES_PER_PREFIX = 10_000_000
IDENTITY_SPACE = len(PHONE_PREFIXES) * PHONES_PER_PREFIX


@dataclass(frozen=True)
class Job:
    """What one generator process does during one phase."""

    host: str
    port: int
    form_key: str
    # Thread t drives kinds[t % len(kinds)], so one process can mix kinds.
    kinds: tuple[str, ...]
    threads: int
    start_at: float  # time.time() at which every process starts sending
    duration: float
    # Requests per second per thread, sent on a fixed schedule whatever the
    # answers take (open loop); 0 sends the next as soon as one is answered.
    rate: float
    # Thread t sends identities seq_base + first_slot + t + k * slots,
    # k = 0, 1, ...: unique across threads, processes and phases.
    first_slot: int
    slots: int
    seq_base: int


@dataclass
class KindResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    last_end: float = 0.0

    def add(self, other: "KindResult") -> None:
        self.latencies_ms.extend(other.latencies_ms)
        self.errors += other.errors
        self.last_end = max(self.last_end, other.last_end)
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count


@dataclass
class JobResult:
    kinds: dict[str, KindResult]
    cpu_seconds: float
    wall_seconds: float


def run_job(job: Job) -> JobResult:
    """Run one process's share of a phase; the entry point of the pool."""
    results = [KindResult() for _ in range(job.threads)]
    threads = [
        threading.Thread(target=_drive, args=(job, t, results[t]), daemon=True)
        for t in range(job.threads)
    ]
    cpu_before = _cpu_seconds()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    return JobResult(
        kinds=_merge_by_kind(job, results),
        cpu_seconds=_cpu_seconds() - cpu_before,
        wall_seconds=max(time.time() - job.start_at, 1e-9),
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _merge_by_kind(job: Job, results: list[KindResult]) -> dict[str, KindResult]:
    merged: dict[str, KindResult] = {}
    for t, result in enumerate(results):
        merged.setdefault(job.kinds[t % len(job.kinds)], KindResult()).add(result)
    return merged


def _drive(job: Job, t: int, result: KindResult) -> None:
    kind = job.kinds[t % len(job.kinds)]
    conn = http.client.HTTPConnection(job.host, job.port, timeout=30)
    interval = 1 / job.rate if job.rate else 0.0
    # Paced threads start spread over one interval, not all at once.
    first = job.start_at + interval * (job.first_slot + t) / job.slots
    deadline = job.start_at + job.duration

    k = 0
    while (due := first + k * interval) < deadline and time.time() < deadline:
        time.sleep(max(0.0, due - time.time()))
        seq = job.seq_base + job.first_slot + t + k * job.slots
        k += 1
        started = time.perf_counter()
        try:
            status = _send(conn, kind, job.form_key, seq)
        except (OSError, http.client.HTTPException):
            # A refused or reset connection counts as an error, never as a
            # fast answer; the next request opens a new connection.
            result.errors += 1
            conn.close()
            time.sleep(0.01)
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.last_end = time.time()
    conn.close()


def _send(conn: http.client.HTTPConnection, kind: str, form_key: str, seq: int) -> int:
    if kind == HEALTHZ:
        conn.request("GET", "/healthz")
    else:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "leadcrm-bench/1",
        }
        conn.request("POST", f"/f/{form_key}/", body=capture_body(seq), headers=headers)
    # http.client reconnects by itself after a "Connection: close" answer,
    # which is what gunicorn's sync workers send every time.
    response = conn.getresponse()
    response.read()
    return response.status


def capture_body(seq: int) -> bytes:
    """A complete Vietnamese lead profile, unique in email and phone by seq.

    Built from fragments encoded once: the generator shares the cores with
    the server, so what it spends on a request is taken from the stack.
    """
    if not 0 <= seq < IDENTITY_SPACE:
        raise ValueError(f"identity {seq} is outside the generator's space")
    family = seq % len(FAMILY_NAMES)
    middle = seq // 7 % len(MIDDLE_NAMES)
    given = seq // 11 % len(GIVEN_NAMES)
    prefix, number = divmod(seq, PHONES_PER_PREFIX)
    digits = f"{number:07d}"

    return (
        f"email={_EMAIL_PARTS[given, family]}.{seq}%40example.vn"
        f"&phone=%2B84+{PHONE_PREFIXES[prefix]}+{digits[:3]}+{digits[3:]}"
        f"&full_name={_NAMES[family, middle, given]}"
        f"&company={_COMPANIES[seq % len(COMPANIES)]}"
        f"&job_title={_JOB_TITLES[seq % len(JOB_TITLES)]}"
        f"&city={_CITIES[seq % len(CITIES)]}"
        "&utm_source=bench"
    ).encode()


def _ascii(name: str) -> str:
    # Đ is its own letter, not D with a combining mark, so NFD keeps it.
    name = name.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", name)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


_EMAIL_PARTS = {
    (g, f): quote_plus(f"{_ascii(given)}.{_ascii(family)}")
    for g, given in enumerate(GIVEN_NAMES)
    for f, family in enumerate(FAMILY_NAMES)
}
_NAMES = {
    (f, m, g): quote_plus(f"{family} {middle} {given}")
    for f, family in enumerate(FAMILY_NAMES)
    for m, middle in enumerate(MIDDLE_NAMES)
    for g, given in enumerate(GIVEN_NAMES)
}
_COMPANIES = [quote_plus(name) for name in COMPANIES]
_JOB_TITLES = [quote_plus(title) for title in JOB_TITLES]
_CITIES = [quote_plus(city) for city in CITIES]
