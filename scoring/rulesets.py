"""Rule set versions: drafts, activation and the bulk rescore it starts."""

import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F, Max, Min, Q
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
    RescoreSlice,
    RuleSet,
    RuleSetStatus,
    rules_for_version,
)
from .services import rescore_batch

logger = logging.getLogger(__name__)

# A running job or slice whose last batch is older than this is taken to be
# dead.
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


def rescore_job_run(*, job_id: int) -> RescoreJob:
    """Split the job into slices of lead ids and send the first few.

    The job keeps RESCORE_PARALLEL slices queued or running, and each slice
    that ends sends the next, so workers take slices in parallel while a
    task published meanwhile (a post's drain, a one-lead recompute) waits
    behind one slice at most, not behind the rest of the job. Each slice
    saves its progress with every batch, so a slice whose worker died
    resumes where it stopped. A job for rules no longer active stops: the
    newer version's job rescores everything anyway.
    """
    job = _claim(job_id)
    if job is None:
        return RescoreJob.objects.get(pk=job_id)

    pending = _slices_of(job)
    if not pending:
        _finish_if_complete(job.pk)
    for slice_id in _resend(pending):
        _enqueue_slice(slice_id)
    in_flight = sum(_was_sent(piece) for piece in pending)
    _send_next(job.pk, count=_parallel(len(pending)) - in_flight)
    job.refresh_from_db()
    return job


def _was_sent(piece: RescoreSlice) -> bool:
    return piece.published_at is not None or piece.status == JobStatus.RUNNING


def _resend(pending: Sequence[RescoreSlice]) -> list[int]:
    """Slices sent before that no worker visibly runs. The job runs again
    only when it looks abandoned, so their tasks may be lost; a duplicate
    finds its slice taken and does nothing."""
    return [piece.pk for piece in pending if _was_sent(piece) and _claimable(piece)]


def _parallel(pending: int) -> int:
    from .tasks import run_rescore_slice

    if run_rescore_slice.app.conf.task_always_eager:
        # Each task runs inside the call that sends it: send them all here
        # rather than nest each slice inside the one before.
        return pending
    return settings.LEADCRM["RESCORE_PARALLEL"]


def _send_next(job_id: int, *, count: int = 1) -> None:
    """Send the job's next `count` slices never sent. A slice whose task
    could not be published is marked unsent again, so the next slice that
    ends sends it."""
    if count <= 0:
        return
    with transaction.atomic():
        ids = list(
            RescoreSlice.objects.select_for_update(skip_locked=True)
            .filter(job_id=job_id, status=JobStatus.QUEUED, published_at=None)
            .order_by("first_id")
            .values_list("pk", flat=True)[:count]
        )
        RescoreSlice.objects.filter(pk__in=ids).update(published_at=timezone.now())
    for slice_id in ids:
        if not _enqueue_slice(slice_id):
            RescoreSlice.objects.filter(pk=slice_id, status=JobStatus.QUEUED).update(
                published_at=None
            )


def _slices_of(job: RescoreJob) -> list[RescoreSlice]:
    """The job's unfinished slices, cut on its first run from the ids of the
    leads there are then (later leads are scored as they arrive)."""
    with transaction.atomic():
        RescoreJob.objects.select_for_update().get(pk=job.pk)
        if not job.slices.exists():
            span = settings.LEADCRM["RESCORE_SLICE_SPAN"]
            bounds = Lead.objects.aggregate(low=Min("pk"), high=Max("pk"))
            if bounds["low"] is not None:
                # What the slices hold, leads added since the job was made
                # included: its progress then ends at its total.
                RescoreJob.objects.filter(pk=job.pk).update(
                    total=Lead.objects.filter(pk__lte=bounds["high"]).count()
                )
                RescoreSlice.objects.bulk_create(
                    RescoreSlice(
                        job=job,
                        first_id=first,
                        last_id=min(first + span - 1, bounds["high"]),
                        done_through=first - 1,
                    )
                    for first in range(bounds["low"], bounds["high"] + 1, span)
                )
        return list(job.slices.exclude(status=JobStatus.DONE))


def _enqueue_slice(slice_id: int) -> bool:
    from .tasks import run_rescore_slice

    return enqueue(run_rescore_slice, slice_id)


def rescore_slice_run(*, slice_id: int, batch_size: int = 2000) -> None:
    """Rescore one slice in primary key order, one committed batch at a
    time, then finish the job if this was its last slice."""
    piece = _claim_slice(slice_id)
    if piece is None:
        return

    job = piece.job
    rules = rules_for_version(job.rule_set_id)
    stopped = False
    try:
        last = piece.done_through
        while last < piece.last_id:
            if not _still_wanted(job):
                logger.info("Rescore job %s stopped: rules replaced", job.pk)
                stopped = True
                break
            ids = list(
                Lead.objects.filter(pk__gt=last, pk__lte=piece.last_id)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            outcome = rescore_batch(ids, rules=rules, now=timezone.now())
            last = ids[-1]
            _record_progress(piece, outcome.scored, outcome.level_changes, last)
    except (OperationalError, InterfaceError):
        # A lost connection, a deadlock, a restart: the slice is handed
        # back, and its task retries it from the progress it saved.
        _release_slice(piece.pk)
        logger.warning("Rescore job %s: slice %s interrupted", job.pk, piece.pk)
        raise
    except Exception as exc:
        RescoreSlice.objects.filter(pk=piece.pk).update(status=JobStatus.FAILED)
        RescoreJob.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        logger.exception("Rescore job %s failed in slice %s", job.pk, piece.pk)
        raise

    RescoreSlice.objects.filter(pk=piece.pk).update(status=JobStatus.DONE)
    if stopped:
        # Nobody would send the slices not begun: they end here with it,
        # and the newer rules' own job scores their leads.
        job.slices.filter(status=JobStatus.QUEUED).update(status=JobStatus.DONE)
    _finish_if_complete(job.pk)
    if not stopped:
        _send_next(job.pk)


def _release_slice(slice_id: int) -> None:
    """Queue an interrupted slice again. When the database cannot be told,
    the slice stays running until its heartbeat is stale, and the job's
    sweeper queues it again then."""
    try:
        RescoreSlice.objects.filter(pk=slice_id, status=JobStatus.RUNNING).update(
            status=JobStatus.QUEUED
        )
    except DatabaseError:
        logger.warning("Slice %s left for the rescore sweeper", slice_id)


def _claim(job_id: int) -> RescoreJob | None:
    """Take the job unless it is finished or another worker runs it."""
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().get(pk=job_id)
        if not _claimable(job):
            return None
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "started_at", "heartbeat_at"])
    return job


def _claim_slice(slice_id: int) -> RescoreSlice | None:
    with transaction.atomic():
        piece = (
            RescoreSlice.objects.select_for_update(of=("self",))
            .select_related("job")
            .get(pk=slice_id)
        )
        if not _claimable(piece) or piece.job.status != JobStatus.RUNNING:
            return None
        piece.status = JobStatus.RUNNING
        piece.heartbeat_at = timezone.now()
        piece.save(update_fields=["status", "heartbeat_at"])
    return piece


def _claimable(work: RescoreJob | RescoreSlice) -> bool:
    """Not finished, and not visibly running elsewhere."""
    if work.status in (JobStatus.DONE, JobStatus.FAILED):
        return False
    stale = timezone.now() - timedelta(seconds=HEARTBEAT_TIMEOUT)
    return not (
        work.status == JobStatus.RUNNING
        and work.heartbeat_at
        and work.heartbeat_at > stale
    )


def _still_wanted(job: RescoreJob) -> bool:
    """Its rules are still in force and no other slice has failed."""
    return RescoreJob.objects.filter(
        pk=job.pk,
        status=JobStatus.RUNNING,
        rule_set__status=RuleSetStatus.ACTIVE,
    ).exists()


def _record_progress(piece: RescoreSlice, scored: int, changes: int, last: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        RescoreSlice.objects.filter(pk=piece.pk).update(
            done_through=last, heartbeat_at=now
        )
        RescoreJob.objects.filter(pk=piece.job_id).update(
            done=F("done") + scored,
            level_changes=F("level_changes") + changes,
            heartbeat_at=now,
        )


def _finish_if_complete(job_id: int) -> None:
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.RUNNING:
            return
        if job.slices.exclude(status=JobStatus.DONE).exists():
            return
        job.status = JobStatus.DONE
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
    logger.info("Rescore job %s done: %s leads", job.pk, job.done)


def rescore_jobs_sweep() -> int:
    """Queue again the jobs no worker is running: a lost publish, or every
    worker of a job gone. Returns how many were queued."""
    now = timezone.now()
    stale = now - timedelta(seconds=HEARTBEAT_TIMEOUT)
    forgotten = RescoreJob.objects.filter(
        Q(status=JobStatus.QUEUED, created_at__lt=now - timedelta(minutes=1))
        | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
    ).values_list("pk", flat=True)
    queued = 0
    for job_id in forgotten:
        _enqueue_job(job_id)
        queued += 1
    return queued


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
