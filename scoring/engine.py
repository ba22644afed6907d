"""The scoring engine: plain Python, no database.

It takes a lead's profile facts and its interactions aggregated per kind and
returns the score parts, the total, the temperature, the level the rules
allow and a rule-by-rule breakdown. Scoring one lead and rescoring every
lead feed it the same aggregated facts.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

LEVELS = ("iql", "mql", "sql")


@dataclass(frozen=True)
class EngagementRule:
    points: float
    # The most a kind can add (or take away) however often it happens, so
    # thirty repeats of one form do not make an MQL.
    cap: float


@dataclass(frozen=True)
class Rules:
    version: str
    engagement: Mapping[str, EngagementRule]
    # Points for each profile field that is filled.
    profile_points: Mapping[str, int]
    half_life_days: float
    temperature_half_life_days: float
    mql_total: int
    mql_min_fit: int
    warm_at: float
    hot_at: float


@dataclass(frozen=True)
class KindActivity:
    """A lead's interactions of one kind, aggregated."""

    kind: str
    quantity: int
    # Quantity weighted by age with the engagement half-life: a visit a
    # half-life ago counts 0.5.
    decayed: float
    # The same with the temperature's shorter half-life.
    recent: float
    last_at: datetime | None = None


@dataclass(frozen=True)
class ScoreLine:
    part: str
    rule: str
    points: int
    detail: str = ""


@dataclass(frozen=True)
class ScoreResult:
    engagement: int
    fit: int
    total: int
    temperature: str
    level: str
    level_rule: str
    breakdown: tuple[ScoreLine, ...] = field(default_factory=tuple)


def decay_weight(age_days: float, half_life_days: float) -> float:
    if half_life_days <= 0:
        return 1.0
    return math.pow(0.5, max(age_days, 0.0) / half_life_days)


def aggregate(
    events: Iterable[tuple[str, int, datetime]], *, now: datetime, rules: Rules
) -> list[KindActivity]:
    """Fold (kind, quantity, occurred_at) rows into one KindActivity a kind."""
    totals: dict[str, list] = {}
    for kind, quantity, occurred_at in events:
        age = (now - occurred_at).total_seconds() / 86400
        entry = totals.setdefault(kind, [0, 0.0, 0.0, None])
        entry[0] += quantity
        entry[1] += quantity * decay_weight(age, rules.half_life_days)
        entry[2] += quantity * decay_weight(age, rules.temperature_half_life_days)
        if entry[3] is None or occurred_at > entry[3]:
            entry[3] = occurred_at
    return [
        KindActivity(kind=k, quantity=q, decayed=d, recent=r, last_at=last)
        for k, (q, d, r, last) in sorted(totals.items())
    ]


def _capped(points: float, cap: float) -> float:
    return max(-abs(cap), min(abs(cap), points))


def score(
    *,
    profile: Mapping[str, str],
    activity: Iterable[KindActivity],
    level: str,
    rules: Rules,
) -> ScoreResult:
    """Score one lead. `level` is its current level: rules only move forward."""
    lines: list[ScoreLine] = []

    engagement = 0.0
    recent = 0.0
    for item in activity:
        rule = rules.engagement.get(item.kind)
        if rule is None or item.quantity == 0:
            continue
        points = _capped(rule.points * item.decayed, rule.cap)
        recent += _capped(rule.points * item.recent, rule.cap)
        engagement += points
        lines.append(
            ScoreLine(
                "engagement",
                f"kind:{item.kind}",
                round(points),
                f"{item.quantity} × {rule.points:g}, cap {rule.cap:g}",
            )
        )

    fit = 0
    for name, points in rules.profile_points.items():
        if profile.get(name):
            fit += points
            lines.append(ScoreLine("fit", f"profile:{name}", points))

    engagement_points = round(engagement)
    total = engagement_points + fit
    new_level, level_rule = _level(level, total, fit, rules)

    return ScoreResult(
        engagement=engagement_points,
        fit=fit,
        total=total,
        temperature=_temperature(recent, rules),
        level=new_level,
        level_rule=level_rule,
        breakdown=tuple(lines),
    )


def _temperature(recent: float, rules: Rules) -> str:
    if recent >= rules.hot_at:
        return "hot"
    if recent >= rules.warm_at:
        return "warm"
    return "cold"


def _level(current: str, total: int, fit: int, rules: Rules) -> tuple[str, str]:
    earned, rule = "iql", "contact_details_known"
    if total >= rules.mql_total and fit >= rules.mql_min_fit:
        earned, rule = "mql", "mql_threshold"

    # Levels only move forward automatically; a person moves a lead back.
    if current in LEVELS and LEVELS.index(current) >= LEVELS.index(earned):
        return current, ""
    return earned, rule
