"""Rule set versions: drafts, activation and the bulk rescore it starts."""

import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from leadcrm.queue import enqueue
from leads.models import Lead

from .models import (
    EngagementRule,
    FitRule,
    JobStatus,
    RescoreJob,
    RuleSet,
    RuleSetStatus,
    rules_for_version,
)
from .services import rescore_batch

logger = logging.getLogger(__name__)

# A running job whose last batch is older than this is taken to be dead.
HEARTBEAT_TIMEOUT = 300

COPIED_FIELDS = [
    f.name
    for f in RuleSet._meta.concrete_fields
    if f.name
    not in {"id", "name", "status", "notes", "based_on", "created_by", "created_at",
            "activated_at", "activated_by"}
]  # fmt: skip


@transaction.atomic
def rule_set_draft(*, base: RuleSet | None = None, by=None, name: str = "") -> RuleSet:
    """A new draft copying a rule set (the active one by default)."""
    base = base or RuleSet.objects.active()
    draft = RuleSet(status=RuleSetStatus.DRAFT, based_on=base, created_by=by)
    if base is not None:
        for name_ in COPIED_FIELDS:
            setattr(draft, name_, getattr(base, name_))
    draft.name = name or (base.name if base else "Rules")
    draft.save()

    if base is not None:
        for rule in base.engagement_rules.all():
            rule.pk = None
            rule.rule_set = draft
            rule.save()
        for rule in base.fit_rules.all():
            rule.pk = None
            rule.rule_set = draft
            rule.save()
    return draft


@transaction.atomic
def rule_set_draft_open(*, by: AbstractBaseUser | None = None) -> RuleSet:
    """The draft to edit: the newest one, or a new copy of the active rules.

    Continuing the newest draft keeps two people from preparing rival
    versions unknowingly; the lock on the active version makes two clicks on
    "Edit rules" open the same draft.
    """
    RuleSet.objects.select_for_update().filter(status=RuleSetStatus.ACTIVE).first()
    draft = RuleSet.objects.filter(status=RuleSetStatus.DRAFT).order_by("-pk").first()
    if draft is not None:
        return draft

    draft = rule_set_draft(by=by)
    logger.info("Rule set draft v%s opened by user %s", draft.pk, _user_id(by))
    return draft


Rule = EngagementRule | FitRule


@transaction.atomic
def rule_set_draft_save(
    *,
    draft: RuleSet,
    rules: Sequence[Rule] = (),
    removed: Sequence[Rule] = (),
) -> RuleSet:
    """Save a draft's settings, its new or changed rules and its removals.

    Everything is validated again here, whoever built the objects. Raises
    ValidationError when the rule set has left draft meanwhile (activated
    in another tab): a version in force is never edited.
    """
    stored = RuleSet.objects.select_for_update().get(pk=draft.pk)
    if stored.status != RuleSetStatus.DRAFT:
        raise ValidationError(_("Only a draft can be edited."), code="not_draft")
    draft.status = RuleSetStatus.DRAFT
    draft.full_clean()
    for rule in rules:
        rule.rule_set = draft
        rule.full_clean()

    draft.save()
    for rule in removed:
        if rule.pk and rule.rule_set_id == draft.pk:
            rule.delete()
    for rule in rules:
        rule.save()
    return draft


@transaction.atomic
def rule_set_discard(*, rule_set: RuleSet, by: AbstractBaseUser | None = None) -> None:
    """Delete a draft with its rules. Versions that scored leads are kept."""
    stored = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
    if stored.status != RuleSetStatus.DRAFT:
        raise ValidationError(_("Only a draft can be discarded."), code="not_draft")

    stored.delete()
    logger.info("Rule set draft v%s discarded by user %s", rule_set.pk, _user_id(by))


def _user_id(user: AbstractBaseUser | None) -> int | None:
    return getattr(user, "pk", None)


PRESETS_DIR = Path(__file__).resolve().parent / "presets"
RULE_SET_PRESET_FIELDS = {
    "half_life_days",
    "temperature_half_life_days",
    "window_days",
    "mql_total",
    "mql_min_fit",
    "warm_at",
    "hot_at",
    "bant_stated_points",
    "bant_confirmed_points",
    "budget_min",
    "budget_currency",
    "timeline_max_days",
    "sql_min_confirmed",
}


def preset_load(name_or_path: str) -> dict:
    """A preset by name (scoring/presets/<name>.json) or by path."""
    path = Path(name_or_path)
    if not path.exists():
        path = PRESETS_DIR / f"{name_or_path}.json"
    return json.loads(path.read_text(encoding="utf-8"))


@transaction.atomic
def rule_set_from_preset(*, preset: dict, by=None) -> RuleSet:
    """A draft built from a preset, validated like the scoring page's forms.

    Raises ValidationError naming the rule at fault.
    """
    draft = rule_set_draft(by=by, name=preset.get("name", "Preset"))
    draft.engagement_rules.all().delete()
    draft.fit_rules.all().delete()
    draft.notes = preset.get("notes", "")
    for name in RULE_SET_PRESET_FIELDS & preset.keys():
        setattr(draft, name, preset[name])
    if "authority_keywords" in preset:
        draft.authority_keywords = "\n".join(preset["authority_keywords"])
    draft.full_clean()
    draft.save()

    for position, rule in enumerate(preset.get("engagement", []), start=1):
        row = EngagementRule(rule_set=draft, **rule)
        _clean(row, f"engagement[{position}]")
    for position, rule in enumerate(preset.get("fit", []), start=1):
        values = rule.get("values", [])
        row = FitRule(rule_set=draft, **{**rule, "values": "\n".join(values)})
        _clean(row, f"fit[{position}]")
    return draft


def _clean(row, where: str) -> None:
    try:
        row.full_clean(exclude=["rule_set"])
    except ValidationError as exc:
        raise ValidationError(f"{where}: {'; '.join(exc.messages)}") from exc
    row.save()


@transaction.atomic
def rule_set_activate(*, rule_set: RuleSet, by=None) -> RescoreJob:
    """Put a draft in force and rescore every lead with it in the background.

    The previous version is archived; versions are never edited once active,
    so every stored score names the rules that made it.
    """
    rule_set = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
    if rule_set.status != RuleSetStatus.DRAFT:
        raise ValueError("Only a draft can be activated.")

    RuleSet.objects.filter(status=RuleSetStatus.ACTIVE).update(
        status=RuleSetStatus.ARCHIVED
    )
    rule_set.status = RuleSetStatus.ACTIVE
    rule_set.activated_at = timezone.now()
    rule_set.activated_by = by
    rule_set.save(update_fields=["status", "activated_at", "activated_by"])
    logger.info(
        "Rule set v%s activated by user %s", rule_set.pk, getattr(by, "pk", None)
    )

    return rescore_job_start(
        rule_set=rule_set, reason=gettext_noop("rules changed"), by=by
    )


def rescore_job_start(*, rule_set: RuleSet, reason: str, by=None) -> RescoreJob:
    job = RescoreJob.objects.create(
        rule_set=rule_set,
        reason=reason,
        created_by=by,
        total=Lead.objects.count(),
    )
    transaction.on_commit(lambda: _enqueue_job(job.pk))
    return job


def _enqueue_job(job_id: int) -> None:
    from .tasks import run_rescore_job

    enqueue(run_rescore_job, job_id)


def rescore_job_run(*, job_id: int, batch_size: int = 2000) -> RescoreJob:
    """Rescore every lead in primary key order, one committed batch at a time.

    Progress is saved with each batch, so a job whose worker died resumes
    where it stopped. A job for rules no longer active stops: the newer
    version's job rescores everything anyway.
    """
    job = _claim(job_id)
    if job is None:
        return RescoreJob.objects.get(pk=job_id)

    rules = rules_for_version(job.rule_set_id)
    max_id = Lead.objects.aggregate(top=Max("pk"))["top"] or 0
    try:
        last = job.last_lead_id
        while last < max_id:
            if not _still_active(job):
                logger.info("Rescore job %s stopped: rules replaced", job.pk)
                break
            ids = list(
                Lead.objects.filter(pk__gt=last, pk__lte=max_id)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            outcome = rescore_batch(ids, rules=rules, now=timezone.now())
            last = ids[-1]
            _record_progress(job, outcome.scored, outcome.level_changes, last)
    except Exception as exc:
        RescoreJob.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        logger.exception("Rescore job %s failed", job.pk)
        raise

    RescoreJob.objects.filter(pk=job.pk).update(
        status=JobStatus.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    logger.info("Rescore job %s done: %s leads", job.pk, job.done)
    return job


def _claim(job_id: int) -> RescoreJob | None:
    """Take the job unless it is finished or another worker runs it."""
    stale = timezone.now() - timedelta(seconds=HEARTBEAT_TIMEOUT)
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().get(pk=job_id)
        if job.status in (JobStatus.DONE, JobStatus.FAILED):
            return None
        if (
            job.status == JobStatus.RUNNING
            and job.heartbeat_at
            and (job.heartbeat_at > stale)
        ):
            return None
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "started_at", "heartbeat_at"])
    return job


def _still_active(job: RescoreJob) -> bool:
    return RuleSet.objects.filter(
        pk=job.rule_set_id, status=RuleSetStatus.ACTIVE
    ).exists()


def _record_progress(job: RescoreJob, scored: int, changes: int, last: int) -> None:
    from django.db.models import F

    RescoreJob.objects.filter(pk=job.pk).update(
        done=F("done") + scored,
        level_changes=F("level_changes") + changes,
        last_lead_id=last,
        heartbeat_at=timezone.now(),
    )


def rescore_all_nightly() -> RescoreJob | None:
    """Decay fades engagement and temperature with time alone, so every lead
    is rescored each night with the rules in force."""
    rule_set = RuleSet.objects.active()
    if rule_set is None:
        return None
    with transaction.atomic():
        return rescore_job_start(
            rule_set=rule_set, reason=gettext_noop("nightly refresh")
        )
