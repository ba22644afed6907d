"""Reads for the scoring pages: versions, drafts and rescore jobs."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Prefetch

from .models import (
    EngagementRule,
    FitRule,
    JobStatus,
    RescoreJob,
    RuleSet,
    RuleSetStatus,
)

JOBS_SHOWN = 5
VERSIONS_SHOWN = 20

_CODES_CACHE: dict[int, dict[str, tuple[str, ...]]] = {}


@dataclass(frozen=True)
class Version:
    rule_set: RuleSet
    # When the next version took over; None for the one in force.
    until: datetime | None


def rule_set_with_rules(queryset=None):
    """Rule sets with their rules and the people named on them, in two
    queries for the rules whatever their number."""
    queryset = RuleSet.objects.all() if queryset is None else queryset
    return queryset.select_related("created_by", "activated_by").prefetch_related(
        Prefetch(
            "engagement_rules",
            queryset=EngagementRule.objects.select_related("campaign"),
        ),
        Prefetch("fit_rules", queryset=FitRule.objects.all()),
    )


def rule_set_active() -> RuleSet | None:
    return rule_set_with_rules().filter(status=RuleSetStatus.ACTIVE).first()


def rule_set_drafts() -> list[RuleSet]:
    return list(
        RuleSet.objects.filter(status=RuleSetStatus.DRAFT)
        .select_related("created_by", "based_on")
        .order_by("-pk")
    )


def rule_set_versions(*, limit: int = VERSIONS_SHOWN) -> list[Version]:
    """Versions that were in force, newest first, each with its period."""
    rule_sets = list(
        RuleSet.objects.exclude(status=RuleSetStatus.DRAFT)
        .select_related("activated_by")
        # The rules installed with the application were never activated by
        # anyone: they come first in time.
        .order_by(F("activated_at").desc(nulls_last=True), "-pk")[:limit]
    )
    versions = []
    until = None
    for rule_set in rule_sets:
        versions.append(Version(rule_set=rule_set, until=until))
        until = rule_set.activated_at or rule_set.created_at
    return versions


def rescore_jobs_latest(*, limit: int = JOBS_SHOWN) -> list[RescoreJob]:
    return list(
        RescoreJob.objects.select_related("rule_set", "created_by").order_by("-pk")[
            :limit
        ]
    )


def rescore_jobs_running(jobs: list[RescoreJob]) -> bool:
    return any(job.status in (JobStatus.QUEUED, JobStatus.RUNNING) for job in jobs)


def rule_codes_for_version(version: int) -> dict[str, tuple[str, ...]]:
    """{rule key: code} of a version's rules whose labels the rule set wrote
    (see EngagementRule.code), for the lead page to say a breakdown's lines
    in its reader's language. Cached as `rules_for_version` is: a version
    that scored leads is frozen. A version gone gives no codes."""
    codes = _CODES_CACHE.get(version)
    if codes is not None:
        return codes
    rule_set = (
        RuleSet.objects.filter(pk=version)
        .prefetch_related("engagement_rules", "fit_rules")
        .first()
    )
    if rule_set is None:
        return {}
    rules = [*rule_set.engagement_rules.all(), *rule_set.fit_rules.all()]
    codes = {rule.key: code for rule in rules if (code := rule.code())}
    if rule_set.status != RuleSetStatus.DRAFT:
        _CODES_CACHE[version] = codes
    return codes
