"""Recompute lead scores from their data and interaction log.

A score is never added to: each recompute reads the lead's profile, BANT
and whole interaction log, so running it twice, or in any order, gives the
same result. One lead and a million go through the same engine; the bulk
path only aggregates the log in SQL and writes in batches.
"""

import io
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import orjson
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from leads.models import Bant, Lead, LeadStatus, Level, LevelChange, StageAction
from leads.services import leads_level_changed

from . import engine
from .aggregation import aggregate_for_leads
from .metrics import roc_auc
from .rules import active_rules

logger = logging.getLogger(__name__)

PROFILE_ATTRS = (
    "email",
    "phone",
    "full_name",
    "company",
    "job_title",
    "industry",
    "city",
    "country",
    "source",
    "origin",
    "email_consent",
)
LEAD_COLUMNS = (
    "pk",
    "level",
    "status",
    "recycled_at",
    "last_interaction_at",
    "custom",
    *PROFILE_ATTRS,
)
SCORE_FIELDS = [
    "score",
    "engagement_score",
    "fit_score",
    "bant_score",
    "temperature",
    "score_breakdown",
    "score_version",
    "scored_at",
    "score_stale",
    "level",
]


def profile_of(row) -> dict[str, object]:
    """The facts fit rules test: lead fields and custom.<key> values."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    profile: dict[str, object] = {name: get(name) for name in PROFILE_ATTRS}
    for key, value in (get("custom") or {}).items():
        profile[f"custom.{key}"] = value
    return profile


def state_of(row) -> engine.LeadState:
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    return engine.LeadState(
        level=get("level"),
        disqualified=get("status") == LeadStatus.DISQUALIFIED,
        recycled_at=get("recycled_at"),
        last_interaction_at=get("last_interaction_at"),
    )


def bant_facts(rows: Iterable[Bant]) -> dict[int, dict[str, engine.BantFact]]:
    facts: dict[int, dict[str, engine.BantFact]] = defaultdict(dict)
    for row in rows:
        facts[row.lead_id][row.criterion] = engine.BantFact(
            criterion=row.criterion,
            status=row.status,
            amount=row.amount,
            currency=row.currency,
            text=row.text,
            date=row.date,
        )
    return facts


def _breakdown(result: engine.ScoreResult) -> list[dict]:
    return [
        {"part": part, "rule": rule, "points": points, "detail": detail, "label": label}
        for part, rule, points, detail, label in result.breakdown
    ]


def _apply(lead: Lead, result: engine.ScoreResult, rules: engine.Rules, now) -> None:
    lead.score = result.total
    lead.engagement_score = result.engagement
    lead.fit_score = result.fit
    lead.bant_score = result.bant
    lead.temperature = result.temperature
    lead.score_breakdown = _breakdown(result)
    lead.score_version = rules.version or None
    lead.scored_at = now
    lead.score_stale = False


def score_recompute(*, lead_id: int, now: datetime | None = None) -> Lead | None:
    """Rescore one lead and return it, or None if it is gone."""
    if not rescore_one(lead_id=lead_id, now=now).scored:
        return None
    return Lead.objects.get(pk=lead_id)


def rescore_if_stale(*, lead_id: int) -> bool:
    """Rescore a lead unless a recompute already ran since it last changed.

    A burst of posts about one person queues a task each; the first scores
    everything they added and the rest find nothing to do.
    """
    if not Lead.objects.filter(pk=lead_id, score_stale=True).exists():
        return False
    return bool(rescore_one(lead_id=lead_id).scored)


def rescore_stale_many(*, lead_ids: Sequence[int]) -> int:
    """Rescore, as one batch, those of the leads no recompute has caught up
    with yet; returns how many were scored."""
    stale = list(
        Lead.objects.filter(pk__in=lead_ids, score_stale=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not stale:
        return 0
    return rescore_batch(stale, rules=active_rules(), now=timezone.now()).scored


def rescore_one(*, lead_id: int, now: datetime | None = None) -> "BatchOutcome":
    """One lead goes down the bulk path as a batch of one, so a lead scores
    the same whichever way it is rescored."""
    return rescore_batch([lead_id], rules=active_rules(), now=now or timezone.now())


@dataclass
class BatchOutcome:
    scored: int = 0
    level_changes: int = 0


def score_recompute_many(
    *,
    lead_ids: Iterable[int],
    batch_size: int = 1000,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rescore the given leads in batches; returns how many were scored."""
    rules = active_rules()
    now = now or timezone.now()
    done = 0
    for batch in _chunks(lead_ids, batch_size):
        done += rescore_batch(batch, rules=rules, now=now).scored
        if progress:
            progress(done)
    return done


def _chunks(items: Iterable[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def rescore_batch(
    lead_ids: Sequence[int], *, rules: engine.Rules, now: datetime
) -> BatchOutcome:
    """Score one batch in one transaction with a fixed number of queries:
    lock the leads, aggregate their log, read their BANT, write scores and
    level history."""
    outcome = BatchOutcome()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        leads = _lock_leads(lead_ids, outermost=outermost)
        if not leads:
            return outcome
        ids = [row["pk"] for row in leads]
        activity = aggregate_for_leads(ids, rules, now)
        with_bant = [row["pk"] for row in leads if row["has_bant"]]
        bant = (
            bant_facts(Bant.objects.filter(lead_id__in=with_bant)) if with_bant else {}
        )

        rows, moves = _score_rows(leads, activity, bant, rules, now)
        _write_scores(rows, rules, now)
        # PostgreSQL's write also set the MQL time of the leads that left IQL.
        postgres = connection.vendor == "postgresql"
        leads_level_changed(changes=moves, mql_at_written=postgres)

    if moves:
        # One line a batch: a bulk rescore moves thousands of leads.
        logger.info(
            "Scored %d leads, %d changed level (first lead %s)",
            len(leads),
            len(moves),
            ids[0],
        )
    outcome.scored = len(leads)
    outcome.level_changes = len(moves)
    return outcome


def _score_rows(leads, activity, bant, rules: engine.Rules, now: datetime):
    """Each lead's result, and the level changes among them."""
    today = timezone.localdate(now)
    rows = []
    moves = []
    for lead in leads:
        result = engine.score(
            profile=profile_of(lead),
            activity=activity.get(lead["pk"], ()),
            rules=rules,
            state=state_of(lead),
            bant=bant.get(lead["pk"]),
            today=today,
        )
        rows.append((lead, result))
        if result.level != lead["level"]:
            moves.append(
                LevelMove(
                    lead["pk"], lead["level"], result.level, result.level_rule, now
                )
            )
    return rows, moves


class LevelMove(NamedTuple):
    """A level change scoring made, before or without its history row."""

    lead_id: int
    from_level: str
    to_level: str
    rule: str
    created_at: datetime


# Two statements in one round trip. The second reads BANT with a snapshot
# taken once the locks are held: a statement that waited for a lock sees
# the lead's new row but not a BANT fact committed by the lock's holder.
_LOCK_SQL = f"""
    SELECT id FROM {Lead._meta.db_table}
    WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE;
    SELECT {", ".join("id" if c == "pk" else c for c in LEAD_COLUMNS)},
           EXISTS (SELECT 1 FROM {Bant._meta.db_table} AS b WHERE b.lead_id = l.id)
    FROM {Lead._meta.db_table} AS l WHERE id = ANY(%(ids)s) ORDER BY id
"""
# Scores are derived, so a batch's commit need not wait for the disk: one
# lost in a crash is scored again, its leads still stale for the sweeper, or
# its job resuming from progress saved after the batch. Only in a
# transaction of scoring's own: a caller's writes may matter.
_NO_COMMIT_WAIT = "SET LOCAL synchronous_commit TO OFF;"


def _lock_leads(lead_ids: Sequence[int], *, outermost: bool) -> list[dict]:
    """The batch's leads as dicts of LEAD_COLUMNS and `has_bant`, locked.

    Locking in primary key order keeps concurrent batches from deadlocking;
    a one-lead recompute holds a single row at a time.
    """
    if connection.vendor != "postgresql":
        return list(
            Lead.objects.select_for_update()
            .filter(pk__in=lead_ids)
            .order_by("pk")
            .annotate(has_bant=Exists(Bant.objects.filter(lead=OuterRef("pk"))))
            .values(*LEAD_COLUMNS, "has_bant")
        )
    # Plain SQL: the ORM's row building was a tenth of a bulk rescore. One
    # round trip with the commit setting: it is most of a one-lead rescore.
    columns = (*LEAD_COLUMNS, "has_bant")
    with connection.cursor() as cursor:
        prefix = _NO_COMMIT_WAIT if outermost else ""
        cursor.execute(prefix + _LOCK_SQL, {"ids": list(lead_ids)})
        rows = [dict(zip(columns, row, strict=True)) for row in cursor]
    for row in rows:
        if isinstance(row["custom"], str):
            row["custom"] = json.loads(row["custom"])
    return rows


def _write_scores(rows, rules: engine.Rules, now: datetime) -> None:
    if connection.vendor == "postgresql":
        _write_scores_postgres(rows, rules, now)
        return

    leads = []
    changes = []
    for row, result in rows:
        lead = Lead(pk=row["pk"], level=result.level)
        _apply(lead, result, rules, now)
        leads.append(lead)
        if result.level != row["level"]:
            changes.append(
                LevelChange(
                    lead_id=row["pk"],
                    from_level=row["level"],
                    to_level=result.level,
                    rule=result.level_rule,
                    score=result.total,
                    created_at=now,
                )
            )
    Lead.objects.bulk_update(leads, SCORE_FIELDS)
    LevelChange.objects.bulk_create(changes)


_BATCH_COLUMNS = (
    "id bigint, score integer, engagement integer, fit integer, bant integer,"
    " temperature varchar(8), breakdown jsonb, level varchar(8), version integer,"
    " from_level varchar(8), rule varchar(100)"
)
_BATCH_TABLE = f"""
    CREATE TEMPORARY TABLE IF NOT EXISTS scoring_batch ({_BATCH_COLUMNS})
    ON COMMIT DELETE ROWS;
    DELETE FROM scoring_batch
"""
# Inline rows, typed as the temporary table's columns are.
_INLINE_SOURCE = """
    SELECT id::bigint, score::integer, engagement::integer, fit::integer,
           bant::integer, temperature, breakdown::jsonb, level,
           version::integer, from_level, rule
    FROM (VALUES {rows}) AS v(id, score, engagement, fit, bant, temperature,
                              breakdown, level, version, from_level, rule)
"""

# The scores, the MQL time of leads that left IQL and the level history,
# in one statement whatever the batch's size; {source} gives its rows.
_WRITE_SQL = f"""
    WITH b AS ({{source}}),
    scored AS (
        UPDATE {Lead._meta.db_table} AS l SET
            score = b.score, engagement_score = b.engagement,
            fit_score = b.fit, bant_score = b.bant,
            temperature = b.temperature, score_breakdown = b.breakdown,
            level = b.level, score_version = b.version, scored_at = %(now)s,
            score_stale = false,
            mql_at = CASE WHEN b.from_level = %(iql)s AND b.level <> %(iql)s
                          THEN %(now)s ELSE l.mql_at END
        FROM b
        WHERE l.id = b.id
          -- A lead whose score came out as stored is left alone: most of a
          -- nightly rescore, and scored_at then says when it last changed.
          AND (l.score_stale OR b.level <> b.from_level
               OR (l.score, l.engagement_score, l.fit_score, l.bant_score,
                   l.temperature, l.score_version, l.score_breakdown)
                  IS DISTINCT FROM (b.score, b.engagement, b.fit, b.bant,
                   b.temperature, b.version, b.breakdown))
    )
    INSERT INTO {LevelChange._meta.db_table} (
        lead_id, from_level, to_level, rule, changed_by_id, action,
        reason_code, reason, score, created_at)
    SELECT id, from_level, level, rule, NULL, %(automatic)s, '', '', score,
           %(now)s
    FROM b
    WHERE level <> from_level
    ORDER BY id
"""
# Up to this many rows go inline in the statement; more are copied into a
# temporary table first, which costs two round trips more but parses
# thousands of rows several times faster.
INLINE_ROWS = 100


def _write_scores_postgres(rows, rules: engine.Rules, now: datetime) -> None:
    version = rules.version or None
    values = [
        (
            row["pk"],
            result.total,
            result.engagement,
            result.fit,
            result.bant,
            result.temperature,
            orjson.dumps(_breakdown(result)).decode(),
            result.level,
            version,
            row["level"],
            result.level_rule,
        )
        for row, result in rows
    ]
    params = {"now": now, "iql": Level.IQL, "automatic": StageAction.AUTOMATIC}

    with connection.cursor() as cursor:
        if len(values) <= INLINE_ROWS:
            # Each tuple goes in as a row: (1, 42, ...).
            names = [f"row{i}" for i in range(len(values))]
            params.update(zip(names, values, strict=True))
            rows_sql = ", ".join(f"%({name})s" for name in names)
            source = _INLINE_SOURCE.format(rows=rows_sql)
            cursor.execute(_WRITE_SQL.format(source=source), params)
            return

        buffer = io.StringIO("".join(map(_copy_line, values)))
        # ON COMMIT clears the table only at a commit: without the DELETE a
        # second batch in one outer transaction (a test, a caller's atomic
        # block) would join the first batch's rows too.
        cursor.execute(_BATCH_TABLE)
        cursor.cursor.copy_expert("COPY scoring_batch FROM STDIN", buffer)
        cursor.execute(_WRITE_SQL.format(source="SELECT * FROM scoring_batch"), params)


def _copy_line(values: tuple) -> str:
    """One row in COPY's text format: ten times cheaper to write than CSV,
    whose quoting doubles every quote of a breakdown's JSON."""
    return "\t".join(map(_copy_field, values)) + "\n"


def _copy_field(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return str(value)


def score_sweep_stale(*, limit: int = 5000) -> int:
    """Rescore leads whose recompute never ran (a lost task, a broker outage)."""
    stale = list(
        Lead.objects.filter(score_stale=True)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not stale:
        return 0
    return score_recompute_many(lead_ids=stale)


@dataclass
class Preview:
    leads: int = 0
    would_rise: int = 0
    would_no_longer_qualify: int = 0
    by_level: dict[str, dict[str, int]] = field(default_factory=dict)
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)
    auc: float | None = None
    with_outcome: int = 0

    def conversion_rate(self, level: str) -> float | None:
        counts = self.by_level.get(level, {})
        known = counts.get("known", 0)
        return counts.get("converted", 0) / known if known else None


def rules_preview(
    *, rules: engine.Rules, batch_size: int = 2000, now: datetime | None = None
) -> Preview:
    """What draft rules would do to the existing leads, written nowhere.

    The level a lead would earn from scratch is compared with its level now:
    rises would happen; a lead that no longer qualifies keeps its level
    (levels only move forward) but is counted. Where outcomes are known, each
    level's conversion rate and the score's ROC AUC are measured.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    preview = Preview()
    scores: list[float] = []
    outcomes: list[bool] = []
    last = 0

    while True:
        leads = list(
            Lead.objects.filter(pk__gt=last)
            .order_by("pk")
            .values(*LEAD_COLUMNS, "known_outcome")[:batch_size]
        )
        if not leads:
            break
        last = leads[-1]["pk"]
        ids = [row["pk"] for row in leads]
        activity = aggregate_for_leads(ids, rules, now)
        bant = bant_facts(Bant.objects.filter(lead_id__in=ids))

        for lead in leads:
            result = engine.score(
                profile=profile_of(lead),
                activity=activity.get(lead["pk"], ()),
                rules=rules,
                state=engine.LeadState(level="iql"),
                bant=bant.get(lead["pk"]),
                today=today,
            )
            _count(preview, lead["level"], result.level, lead["known_outcome"])
            if lead["known_outcome"] is not None:
                scores.append(result.total)
                outcomes.append(lead["known_outcome"])

    preview.with_outcome = len(outcomes)
    preview.auc = roc_auc(scores, outcomes)
    return preview


def _count(preview: Preview, current: str, earned: str, outcome: bool | None) -> None:
    preview.leads += 1
    rank = engine.LEVELS.index
    if rank(earned) > rank(current):
        preview.would_rise += 1
    elif rank(earned) < rank(current):
        preview.would_no_longer_qualify += 1
    key = (current, earned)
    preview.transitions[key] = preview.transitions.get(key, 0) + 1

    counts = preview.by_level.setdefault(
        earned, {"leads": 0, "known": 0, "converted": 0}
    )
    counts["leads"] += 1
    if outcome is not None:
        counts["known"] += 1
        counts["converted"] += int(outcome)
