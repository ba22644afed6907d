"""The scoring engine: plain Python, no database.

It takes a lead's profile, its interactions aggregated into activity facts
and its BANT facts, and returns the three score parts, the total, the
temperature, the level the rules allow and a rule-by-rule breakdown.
Scoring one lead and rescoring a million feed it the same facts.
"""

import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date as date_type
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import NamedTuple

LEVELS = ("iql", "mql", "sql")
RULE_MEMO_SIZE = 4096
BANT_CRITERIA = ("budget", "authority", "need", "timeline")
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.com.vn",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "icloud.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "zoho.com",
        "gmx.com",
        "mail.ru",
        "yandex.com",
        "qq.com",
        "163.com",
    }
)


def fold(text: object) -> str:
    """Lower-case without diacritics, so "Giám đốc" matches "giam doc"."""
    return _fold(str(text or ""))


# Profiles repeat the same few cities, titles and sources across a million
# leads: folding each distinct value once keeps bulk rescoring cheap.
@lru_cache(maxsize=65536)
def _fold(value: str) -> str:
    value = value.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", value)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


@dataclass(frozen=True)
class EngagementRule:
    key: str
    kind: str
    points: float
    # The most the rule can add (or take away) in all, and within one window
    # of `Rules.window_days`, so thirty repeats of one form make no MQL.
    cap: float | None = None
    window_cap: float | None = None
    # Narrowing: only interactions of this campaign, or with this subject
    # (a document, a page, an email's link).
    campaign_id: int | None = None
    subject: str = ""
    label: str = ""

    @property
    def specificity(self) -> int:
        return (self.campaign_id is not None) + bool(self.subject)

    def matches(self, activity: "Activity") -> bool:
        return (
            self.kind == activity.kind
            and (self.campaign_id is None or self.campaign_id == activity.campaign_id)
            and (not self.subject or fold(self.subject) == fold(activity.subject))
        )


FIT_OPERATORS = (
    "filled",
    "equals",
    "one_of",
    "contains",
    "range",
    "free_mail",
    "company_mail",
)


@dataclass(frozen=True)
class FitRule:
    key: str
    field: str
    operator: str
    points: int
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    label: str = ""

    def matches(self, profile: Mapping[str, object]) -> bool:
        value = profile.get(self.field)
        if self.operator == "filled":
            return value not in (None, "", [], {})
        if self.operator in ("free_mail", "company_mail"):
            domain = str(value or "").rpartition("@")[2]
            if not domain:
                return False
            return (domain in FREE_MAIL_DOMAINS) == (self.operator == "free_mail")
        if value in (None, ""):
            return False
        if self.operator == "range":
            number = _number(value)
            return number is not None and _in_range(number, self.low, self.high)

        text = fold(value).strip()
        wanted = self._wanted
        if self.operator == "equals":
            return bool(wanted) and text == wanted[0]
        if self.operator == "one_of":
            return text in wanted
        if self.operator == "contains":
            return any(w and w in text for w in wanted)
        raise ValueError(f"unknown fit operator {self.operator!r}")

    @cached_property
    def _wanted(self) -> tuple[str, ...]:
        return tuple(fold(v).strip() for v in self.values)


def _number(value: object) -> float | None:
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _in_range(number: float, low: float | None, high: float | None) -> bool:
    return (low is None or number >= low) and (high is None or number < high)


@dataclass(frozen=True)
class BantPolicy:
    stated_points: int = 5
    confirmed_points: int = 15
    budget_min: Decimal = Decimal(0)
    budget_currency: str = "VND"
    authority_keywords: tuple[str, ...] = ()
    timeline_max_days: int = 90
    # SQL needs this many criteria confirmed by sales, these among them.
    sql_min_confirmed: int = 3
    sql_required: tuple[str, ...] = ("budget", "need")

    @cached_property
    def folded_keywords(self) -> tuple[str, ...]:
        return tuple(fold(word) for word in self.authority_keywords if word.strip())


@dataclass(frozen=True)
class BantFact:
    criterion: str
    status: str  # "stated" by the lead or "confirmed" by sales
    amount: Decimal | None = None
    currency: str = ""
    text: str = ""
    date: date_type | None = None


@dataclass(frozen=True)
class Rules:
    version: int
    engagement: tuple[EngagementRule, ...]
    fit: tuple[FitRule, ...]
    bant: BantPolicy = field(default_factory=BantPolicy)
    half_life_days: float = 90
    temperature_half_life_days: float = 14
    window_days: int = 7
    mql_total: int = 50
    mql_min_fit: int = 20
    warm_at: float = 10
    hot_at: float = 30

    @cached_property
    def _rule_memo(self) -> dict[tuple, "EngagementRule | None"]:
        return {}

    @cached_property
    def _narrowed_by(self) -> dict[str, tuple[bool, bool]]:
        """For each kind: whether any of its rules names a campaign, a
        subject. Only then does the memo tell campaigns or subjects apart."""
        return {
            kind: (
                any(rule.campaign_id is not None for rule in candidates),
                any(rule.subject for rule in candidates),
            )
            for kind, candidates in self.engagement_by_kind.items()
        }

    def engagement_rule_for(self, activity: "Activity") -> "EngagementRule | None":
        """The most specific rule for the activity, looked up once for each
        kind, campaign and subject however many leads share them."""
        by_campaign, by_subject = self._narrowed_by.get(activity.kind, (False, False))
        key = (
            activity.kind,
            activity.campaign_id if by_campaign else None,
            activity.subject if by_subject else "",
        )
        memo = self._rule_memo
        try:
            return memo[key]
        except KeyError:
            pass
        # Subjects come from outside (document names, links): a rule set
        # lives as long as its worker, so the memo must not grow with them.
        if len(memo) >= RULE_MEMO_SIZE:
            memo.clear()
        rule = memo[key] = next(
            (
                rule
                for rule in self.engagement_by_kind.get(activity.kind, ())
                if rule.matches(activity)
            ),
            None,
        )
        return rule

    @cached_property
    def engagement_by_kind(self) -> dict[str, list[EngagementRule]]:
        by_kind: dict[str, list[EngagementRule]] = {}
        for rule in self.engagement:
            by_kind.setdefault(rule.kind, []).append(rule)
        for candidates in by_kind.values():
            # The most specific rule wins: a rule for one document beats the
            # rule for every download.
            candidates.sort(key=lambda r: -r.specificity)
        return by_kind


class Activity(NamedTuple):
    """A lead's interactions of one kind, campaign and subject in one window,
    aggregated. The same facts come from Python (`aggregate`) or from SQL.

    A named tuple, not a dataclass: a bulk rescore builds ten million.
    """

    kind: str
    quantity: int
    # Quantity weighted by age with the engagement half-life: an interaction
    # one half-life old counts 0.5.
    decayed: float
    # The same with the temperature's shorter half-life.
    recent: float
    campaign_id: int | None = None
    subject: str = ""
    window: int = 0


@dataclass(frozen=True)
class LeadState:
    level: str = "iql"
    disqualified: bool = False
    # A person recycled the lead to nurture at this time: it earns a level
    # again only with activity after that.
    recycled_at: datetime | None = None
    last_interaction_at: datetime | None = None


class ScoreLine(NamedTuple):
    """One line of a score's explanation. A named tuple: a bulk rescore
    writes about ten for each of a million leads."""

    part: str
    rule: str
    points: int
    detail: str = ""
    # The rule in a person's words, so a stored breakdown explains itself
    # after its rule set has changed.
    label: str = ""


@dataclass(frozen=True)
class ScoreResult:
    engagement: int
    fit: int
    bant: int
    total: int
    temperature: str
    level: str
    level_rule: str
    breakdown: tuple[ScoreLine, ...] = ()
    bant_met: Mapping[str, str] = field(default_factory=dict)


def decay_weight(age_days: float, half_life_days: float) -> float:
    if half_life_days <= 0:
        return 1.0
    return math.pow(0.5, max(age_days, 0.0) / half_life_days)


def window_of(moment: datetime, window_days: int) -> int:
    return int(moment.timestamp() // (max(window_days, 1) * 86400))


def aggregate(
    events: Iterable[tuple], *, now: datetime, rules: Rules
) -> list[Activity]:
    """Fold (kind, quantity, occurred_at[, campaign_id, subject]) rows into
    Activity facts, exactly as the bulk path's SQL does."""
    totals: dict[tuple, list[float]] = {}
    for kind, quantity, occurred_at, *rest in events:
        campaign_id = rest[0] if rest else None
        subject = rest[1] if len(rest) > 1 else ""
        age = (now - occurred_at).total_seconds() / 86400
        key = (kind, campaign_id, subject, window_of(occurred_at, rules.window_days))
        entry = totals.setdefault(key, [0, 0.0, 0.0])
        entry[0] += quantity
        entry[1] += quantity * decay_weight(age, rules.half_life_days)
        entry[2] += quantity * decay_weight(age, rules.temperature_half_life_days)
    return [
        Activity(kind, int(q), d, r, campaign_id, subject, window)
        for (kind, campaign_id, subject, window), (q, d, r) in totals.items()
    ]


def _clamp(points: float, cap: float | None) -> float:
    if cap is None:
        return points
    return max(-abs(cap), min(abs(cap), points))


def score_engagement(
    activity: Iterable[Activity], rules: Rules
) -> tuple[float, float, list[ScoreLine]]:
    """Engagement points, recent (temperature) points and their lines."""
    rule_for = rules.engagement_rule_for
    # rule key -> [rule, decayed points, recent points, fresh points, count]
    per_rule: dict[str, list] = {}

    for item in activity:
        quantity = item.quantity
        rule = rule_for(item)
        if rule is None or quantity <= 0:
            continue
        # The window cap limits undecayed points; decay then applies to what
        # the window kept, in the proportion its interactions have faded.
        kept = _clamp(rule.points * quantity, rule.window_cap)
        sums = per_rule.get(rule.key)
        if sums is None:
            sums = per_rule[rule.key] = [rule, 0.0, 0.0, 0.0, 0]
        sums[1] += kept * item.decayed / quantity
        sums[2] += kept * item.recent / quantity
        sums[3] += kept
        sums[4] += quantity

    engagement = recent_total = 0.0
    lines = []
    for key, (rule, points, recent_points, fresh, count) in per_rule.items():
        cap = rule.cap
        points = _clamp(points, cap)
        engagement += points
        recent_total += _clamp(recent_points, cap)
        lines.append(
            ScoreLine(
                "engagement",
                key,
                round(points),
                _detail(rule, count, round(_clamp(fresh, cap)), points),
                rule.label,
            )
        )
    return engagement, recent_total, lines


def _detail(rule: EngagementRule, count: int, fresh: int, points: float) -> str:
    # Stored in English; the lead page reads this shape back to say it in
    # its reader's language (leads_tags.score_detail_label): change both.
    text = f"{count} × {rule.points:g}"
    if rule.cap is not None:
        text += f", cap {abs(rule.cap):g}"
    if round(points) != fresh:
        # Why 1 × 10 shows as 9: the activity has aged.
        text += f", faded from {fresh}"
    return text


def score_fit(
    profile: Mapping[str, object], rules: Rules
) -> tuple[int, list[ScoreLine]]:
    fit = 0
    lines = []
    for rule in rules.fit:
        if rule.matches(profile):
            fit += rule.points
            lines.append(ScoreLine("fit", rule.key, rule.points, label=rule.label))
    return fit, lines


def bant_met(
    facts: Mapping[str, BantFact],
    profile: Mapping[str, object],
    policy: BantPolicy,
    today: date_type,
) -> dict[str, str]:
    """Which criteria are met, and how: "stated" or "confirmed"."""
    met: dict[str, str] = {}
    for criterion in BANT_CRITERIA:
        fact = facts.get(criterion)
        if fact is not None and _criterion_met(fact, policy, today):
            met[criterion] = fact.status
    # A job title that names a decision maker states authority by itself.
    if "authority" not in met and _has_keyword(profile.get("job_title"), policy):
        met["authority"] = "stated"
    return met


def _criterion_met(fact: BantFact, policy: BantPolicy, today: date_type) -> bool:
    if fact.criterion == "budget":
        try:
            amount = Decimal(fact.amount) if fact.amount is not None else None
        except InvalidOperation:
            return False
        same_currency = (fact.currency or policy.budget_currency).upper() == (
            policy.budget_currency.upper()
        )
        return amount is not None and same_currency and amount >= policy.budget_min
    if fact.criterion == "authority":
        return _has_keyword(fact.text, policy) or (
            fact.status == "confirmed" and bool(fact.text.strip())
        )
    if fact.criterion == "need":
        return bool(fact.text.strip())
    if fact.criterion == "timeline":
        return (
            fact.date is not None
            and 0 <= (fact.date - today).days <= policy.timeline_max_days
        )
    return False


def _has_keyword(text: object, policy: BantPolicy) -> bool:
    folded = fold(text)
    return bool(folded) and any(word in folded for word in policy.folded_keywords)


def score_bant(met: Mapping[str, str], policy: BantPolicy) -> tuple[int, list]:
    lines = []
    total = 0
    for criterion, status in met.items():
        points = (
            policy.confirmed_points if status == "confirmed" else policy.stated_points
        )
        total += points
        lines.append(ScoreLine("bant", f"bant:{criterion}", points, status))
    return total, lines


def sql_ready(met: Mapping[str, str], policy: BantPolicy) -> bool:
    confirmed = {c for c, status in met.items() if status == "confirmed"}
    return (
        len(confirmed) >= policy.sql_min_confirmed
        and set(policy.sql_required) <= confirmed
    )


def score(
    *,
    profile: Mapping[str, object],
    activity: Iterable[Activity],
    rules: Rules,
    state: LeadState | None = None,
    bant: Mapping[str, BantFact] | None = None,
    today: date_type,
    level: str | None = None,
) -> ScoreResult:
    """Score one lead. Automatic level changes only move it forward."""
    state = state or LeadState(level=level or "iql")

    engagement, recent, lines = score_engagement(activity, rules)
    fit, fit_lines = score_fit(profile, rules)
    met = bant_met(bant or {}, profile, rules.bant, today)
    bant_points, bant_lines = score_bant(met, rules.bant)

    engagement_points = round(engagement)
    total = engagement_points + fit + bant_points
    new_level, level_rule = _level(state, total, fit, met, rules)

    return ScoreResult(
        engagement=engagement_points,
        fit=fit,
        bant=bant_points,
        total=total,
        temperature=_temperature(recent, rules),
        level=new_level,
        level_rule=level_rule,
        breakdown=tuple(lines + fit_lines + bant_lines),
        bant_met=met,
    )


def _temperature(recent: float, rules: Rules) -> str:
    if recent >= rules.hot_at:
        return "hot"
    if recent >= rules.warm_at:
        return "warm"
    return "cold"


def _level(
    state: LeadState, total: int, fit: int, met: Mapping[str, str], rules: Rules
) -> tuple[str, str]:
    current = state.level if state.level in LEVELS else "iql"
    if state.disqualified:
        return current, ""
    if state.recycled_at is not None and (
        state.last_interaction_at is None
        or state.last_interaction_at <= state.recycled_at
    ):
        return current, ""

    earned, rule = "iql", "contact_details_known"
    if total >= rules.mql_total and fit >= rules.mql_min_fit:
        earned, rule = "mql", "mql_threshold"
    if sql_ready(met, rules.bant):
        earned, rule = "sql", "sql_bant_confirmed"

    if LEVELS.index(current) >= LEVELS.index(earned):
        return current, ""
    return earned, rule
