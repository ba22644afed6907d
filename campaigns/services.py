"""Capture: store a raw submission first, then turn it into a lead."""

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from leadcrm.queue import enqueue, wake, wake_hold
from leads.amounts import parse_amount
from leads.bulk import insert_rows, update_rows
from leads.models import Channel
from leads.normalize import storable_text
from leads.services import (
    PROFILE_FIELDS,
    UTM_KEYS,
    BatchIngestResult,
    IngestItem,
    InteractionData,
    LeadData,
    identity_errors,
    lead_ingest,
    lead_ingest_many,
    leads_announce,
)

from . import events, ratelimit
from .models import (
    CONSENT_FIELD,
    Campaign,
    ConsentRecord,
    ConsentText,
    SpamReason,
    Submission,
    SubmissionStatus,
    WebForm,
)
from .spam import HONEYPOT_FIELD, TOKEN_FIELD, spam_reason

logger = logging.getLogger(__name__)

# Fields of a post that are about the post itself, never lead data.
CONTROL_FIELDS = {HONEYPOT_FIELD, TOKEN_FIELD, "csrfmiddlewaretoken", "_next"}
BANT_FIELDS = {"budget", "budget_currency", "authority", "need", "timeline"}
KNOWN_FIELDS = {
    "email",
    "phone",
    CONSENT_FIELD,
    *PROFILE_FIELDS,
    *UTM_KEYS,
    *BANT_FIELDS,
}
# What a ticked checkbox or a JSON client may send for "yes".
TRUE_VALUES = {"1", "on", "yes", "true", "y", "có"}
CONSENT_SALT = "leadcrm.campaigns.consent-confirm"
# Processing that crashes this often is a bug, not a passing fault: the
# submission is marked failed for a person instead of retried for ever.
MAX_ATTEMPTS = 8
# A drain takes this many pending submissions at a time, and holds them
# this long before another worker may take them again.
DRAIN_BATCH = 200
DRAIN_LEASE = timedelta(seconds=120)
DRAIN_LINGER = 0.1
DRAIN_MAX_BATCHES = 50
# A drain whose batches are smaller than this lets its hold run out and
# stops: at a trickle of posts it would otherwise keep a worker process,
# asleep between batches of two, from every other task.
DRAIN_BUSY = 20
WAKE_KEY = "submissions"


class SubmissionRejected(Exception):
    def __init__(self, errors: Mapping[str, list[str]]):
        super().__init__("submission rejected")
        self.errors = dict(errors)


def clean_payload(raw: Mapping[str, object]) -> dict[str, str | list[str]]:
    """Keep string values only, trimmed to a sane size, without control fields."""
    payload: dict[str, str | list[str]] = {}
    for key, value in raw.items():
        key = storable_text(str(key))[:100]
        if key in CONTROL_FIELDS:
            continue
        if isinstance(value, list):
            payload[key] = [storable_text(str(v))[:2000] for v in value[:20]]
        elif value is not None:
            payload[key] = storable_text(str(value))[:2000]
    return payload


def submission_receive(
    *,
    form: WebForm,
    data: Mapping[str, object],
    remote_addr: str | None = None,
    user_agent: str = "",
    referer: str = "",
) -> int:
    """Validate and store a form post, enqueue its processing after commit,
    and return the stored submission's id.

    Raises SubmissionRejected with field errors when the post names no valid
    email nor phone, or misses a field the form requires. Spam (see
    campaigns.spam) is stored as spam, before any validation, and answered
    like any other post. `form.fields` should be prefetched (active_form
    does): the builder's required fields are checked here.
    """
    values = {
        "form_id": form.pk,
        "payload": clean_payload(data),
        "remote_addr": remote_addr,
        "user_agent": user_agent[:300],
        "referer": referer[:500],
        "language": (get_language() or "")[:8],
    }
    reason = spam_reason(form, data)
    if reason:
        logger.info("Form %s: post kept as spam (%s)", form.pk, reason)
        return _store(
            {**values, "status": SubmissionStatus.SPAM, "spam_reason": reason}
        )

    payload = values["payload"]
    errors = _contact_errors(payload)
    for field in form.fields.all():
        if field.required and not _filled(field.widget, payload.get(field.name)):
            errors.setdefault(field.name, [_("This field is required.")])
    if errors:
        raise SubmissionRejected(errors)

    if form.consent_version and _is_true(payload.get(CONSENT_FIELD)):
        values["consent_version"] = form.consent_version
    # A single INSERT commits by itself; on_commit then runs at once, or
    # after the caller's transaction when there is one.
    submission_id = _store(values)
    transaction.on_commit(lambda: _enqueue_processing(submission_id))

    return submission_id


def _store(values: Mapping[str, object]) -> int:
    # The ORM's work to build and save one row was a third of a capture
    # request's CPU; on PostgreSQL the row goes straight in.
    if connection.vendor == "postgresql":
        [(submission_id,)] = insert_rows(Submission, [values], returning=("id",))
        return submission_id
    return Submission.objects.create(**values).pk


def _contact_errors(payload: Mapping) -> dict[str, list[str]]:
    """Errors when the post names no valid email nor phone, else none.

    A valid email is enough here: the worker reads the phone beside it (an
    invalid one is kept in the lead's custom data), and the request is
    spared parsing it.
    """
    raw_email = _first(payload.get("email"))
    email, _phone, errors = identity_errors(email=raw_email, phone="")
    if email:
        return {}
    _email, phone, phone_errors = identity_errors(
        email="", phone=_first(payload.get("phone"))
    )
    if phone:
        return {}

    errors.update(phone_errors)
    # Say that either will do, next to whichever field is missing.
    hint = _("Enter an email address or a phone number.")
    for name in ("email", "phone"):
        errors.setdefault(name, [hint])
    return errors


def _filled(widget: str, value: str | list[str] | None) -> bool:
    if widget == "checkbox":
        return _is_true(value)
    return bool(_first(value).strip())


def _is_true(value: str | list[str] | None) -> bool:
    return _first(value).strip().lower() in TRUE_VALUES


def _first(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


def _enqueue_processing(submission_id: int) -> None:
    from .tasks import drain_submissions, process_submission

    if process_submission.app.conf.task_always_eager:
        # In-process (make run, unit tests): processed right away, alone.
        enqueue(process_submission, submission_id)
        return
    # A worker drains pending submissions in batches; a burst of posts
    # publishes one wake-up, not a task each.
    wake(drain_submissions, key=WAKE_KEY)


class Claimed(NamedTuple):
    """A pending submission as processing reads it: what a Submission row
    holds, without building a model instance for each of a batch."""

    pk: int
    form: WebForm
    payload: dict
    received_at: datetime
    consent_version: int | None


def submission_to_lead_data(
    submission: "Submission | Claimed", *, campaigns: dict | None = None
) -> LeadData:
    """What a post says about its person. `campaigns` memoises the touch
    campaign of each form and UTM code across a batch."""
    payload = submission.payload
    fields = {name: _first(payload.get(name)) for name in ("email", "phone")}
    fields.update({name: _first(payload.get(name)) for name in PROFILE_FIELDS})
    utm = {key: _first(payload.get(key)) for key in UTM_KEYS if payload.get(key)}
    custom = {k: v for k, v in payload.items() if k not in KNOWN_FIELDS}

    fields["source"] = fields["source"] or utm.get("utm_source", "") or "web_form"
    memo = campaigns if campaigns is not None else {}
    touch = (submission.form.pk, utm.get("utm_campaign", ""))
    if touch not in memo:
        memo[touch] = touch_campaign_id(submission.form, touch[1])
    # Marketing consent starts with the post itself only without double
    # opt-in; with it, at the confirmation. An unticked box changes nothing.
    consent = submission.consent_version is not None
    return LeadData(
        **fields,
        custom=custom,
        utm=utm,
        campaign_id=memo[touch],
        email_consent=True if consent and not submission.form.double_opt_in else None,
        bant=stated_bant(payload, received=submission.received_at.date()),
    )


def touch_campaign_id(form: WebForm, utm_campaign: str) -> int:
    """The campaign that brought the person: the one whose UTM code the post
    names (a newsletter linking to an ebook form), else the form's own.

    The form's interaction always counts for the form's campaign; this is
    only the lead's first/last touch.
    """
    code = utm_campaign.strip()
    if code and code.lower() != (form.campaign.utm_campaign or "").lower():
        match = (
            Campaign.objects.filter(utm_campaign__iexact=code)
            .values_list("pk", flat=True)
            .first()
        )
        if match is not None:
            return match
    return form.campaign_id


def stated_bant(payload: Mapping, *, received: date) -> dict[str, dict]:
    """BANT a lead states on a form: budget (with budget_currency), authority,
    need and timeline (a date, or a number of days from the post)."""
    stated: dict[str, dict] = {}
    currency = _first(payload.get("budget_currency")).strip().upper() or "VND"
    amount = parse_amount(_first(payload.get("budget")), currency)
    if amount is not None:
        stated["budget"] = {"amount": amount, "currency": currency}
    for criterion in ("authority", "need"):
        text = _first(payload.get(criterion)).strip()
        if text:
            stated[criterion] = {"text": text}
    when = parse_timeline(_first(payload.get("timeline")), received)
    if when is not None:
        stated["timeline"] = {"date": when}
    return stated


def parse_timeline(raw: str, received: date) -> date | None:
    text = raw.strip()
    if not text:
        return None
    # isdecimal, not isdigit: "²" is a digit that int() refuses, and the
    # ValueError would sink the post and its whole batch.
    if text.isdecimal():
        return received + timedelta(days=min(int(text), 3650))
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def submission_process(*, submission_id: int) -> Submission | None:
    """Turn one stored submission into a lead and an interaction (eager
    mode, and the sweeper's tasks; workers drain batches instead).

    Safe to run twice: a processed submission is left alone, and the
    interaction's idempotency key is the submission id.
    """
    if _claim_attempt(submission_id):
        try:
            lead_ids = _process_together([submission_id])
        except Exception as exc:
            _keep_error(submission_id, exc)
            raise
        transaction.on_commit(lambda: leads_announce(lead_ids))

    return Submission.objects.filter(pk=submission_id).first()


def _keep_error(submission_id: int, exc: Exception) -> None:
    # Kept for the person who reads a submission that never went through;
    # the attempt is retried until MAX_ATTEMPTS.
    Submission.objects.filter(pk=submission_id).update(
        error=f"{type(exc).__name__}: {exc}"[:1000]
    )


def _process_together(submission_ids: Sequence[int]) -> list[int]:
    """Process claimed submissions in one transaction, set-based: a fixed
    number of queries whatever the batch's size, but for returning leads
    and the posts of event and consent forms. Returns the ids of their
    leads, for the caller to announce once it has committed."""
    with transaction.atomic():
        pending = _lock_pending(submission_ids)
        if not pending:
            return []

        campaigns: dict = {}
        items = [
            IngestItem(
                submission_to_lead_data(post, campaigns=campaigns),
                [_form_interaction(post)],
            )
            for post in pending
        ]
        results = lead_ingest_many(items=items)

        _record_outcomes(pending, results)
        _after_processing(pending, results)

    _log_outcomes(results)
    return [result.lead_id for result in results if result.lead_id]


def _form_interaction(post: Claimed) -> InteractionData:
    return InteractionData(
        kind=post.form.interaction_kind,
        channel=Channel.WEB_FORM,
        campaign_id=post.form.campaign_id,
        occurred_at=post.received_at,
        details={"form": post.form.key, "submission": post.pk},
        idempotency_key=f"submission:{post.pk}",
    )


def _lock_pending(submission_ids: Sequence[int]) -> list[Claimed]:
    """The submissions among these still pending, locked, with their forms.

    Only the submissions are locked: locking the joined form and campaign
    rows would make a form's submissions wait for each other.
    """
    rows = list(
        Submission.objects.select_for_update()
        .filter(pk__in=submission_ids, status=SubmissionStatus.PENDING)
        .order_by("pk")
        .values_list("pk", "form_id", "payload", "received_at", "consent_version")
    )
    forms = WebForm.objects.select_related("campaign").in_bulk({row[1] for row in rows})
    return [
        Claimed(pk, forms[form_id], payload, received_at, consent_version)
        for pk, form_id, payload, received_at, consent_version in rows
    ]


def _record_outcomes(
    pending: Sequence[Claimed], results: Sequence[BatchIngestResult]
) -> None:
    now = timezone.now()
    outcomes = []
    for post, result in zip(pending, results, strict=True):
        failed = result.error is not None
        if failed:
            logger.warning("Submission %s failed validation", post.pk)
        outcomes.append(
            {
                "pk": post.pk,
                "status": SubmissionStatus.FAILED
                if failed
                else SubmissionStatus.PROCESSED,
                "error": "; ".join(result.error.messages) if failed else "",
                "lead_id": result.lead_id,
                "processed_at": now,
            }
        )

    if connection.vendor == "postgresql":
        update_rows(Submission, outcomes, types=_OUTCOME_TYPES)
        return
    for outcome in outcomes:
        pk = outcome.pop("pk")
        Submission.objects.filter(pk=pk).update(**outcome)


_OUTCOME_TYPES = {
    "status": "varchar",
    "error": "text",
    "lead_id": "bigint",
    "processed_at": "timestamptz",
}


def _after_processing(
    pending: Sequence[Claimed], results: Sequence[BatchIngestResult]
) -> None:
    """Consent records and event seats, for the posts whose forms ask."""
    event_forms = events.forms_with_events({post.form.pk for post in pending})
    wanted = [
        post.pk
        for post, result in zip(pending, results, strict=True)
        if result.lead_id
        and (post.consent_version is not None or post.form.pk in event_forms)
    ]
    if not wanted:
        return

    submissions = Submission.objects.select_related("form", "lead").in_bulk(wanted)
    for pk in wanted:
        submission = submissions[pk]
        _record_consent(submission)
        # An event's registration form: the lead takes a seat.
        if submission.form_id in event_forms:
            events.registration_from_submission(
                submission=submission, lead=submission.lead
            )


def _log_outcomes(results: Sequence[BatchIngestResult]) -> None:
    created = sum(result.created for result in results)
    failed = sum(result.error is not None for result in results)
    logger.info(
        "Processed %s submissions: %s new leads, %s known, %s failed",
        len(results),
        created,
        len(results) - created - failed,
        failed,
    )


def _claim_attempt(submission_id: int) -> bool:
    """Count an attempt in its own transaction, so a crash still counts it.

    Returns False when the submission is not pending any more or has used
    up its attempts (it is then marked failed for a person to look at).
    """
    with transaction.atomic():
        submission = (
            Submission.objects.select_for_update().filter(pk=submission_id).first()
        )
        if submission is None or submission.status != SubmissionStatus.PENDING:
            return False

        submission.attempts += 1
        if submission.attempts > MAX_ATTEMPTS:
            submission.status = SubmissionStatus.FAILED
            submission.error = f"Gave up after {MAX_ATTEMPTS} attempts. " + (
                submission.error
            )
            logger.error("Submission %s failed %s times", submission.pk, MAX_ATTEMPTS)
        submission.save(update_fields=["attempts", "status", "error"])
        if _first_claim(submission.attempts - 1, submission.leased_until) and (
            _keep_rate_limited(
                [(submission.pk, *(getattr(submission, f) for f in _LIMIT_FIELDS))]
            )
        ):
            return False

    return submission.status == SubmissionStatus.PENDING


def submission_drain(*, batch_size: int | None = None) -> int:
    """Process pending submissions a batch at a time; returns how many.

    A batch's first tries are processed together, in one transaction, and
    their leads then rescored together. If that transaction fails, each of
    them is processed alone, so one bad post never holds back the others.
    A submission on its second try or later always goes alone: whatever
    crashed its batch cannot take others down with it again.

    While posts keep coming, a drain that found less than a full batch
    waits DRAIN_LINGER before the next: a batch's queries cost the same for
    ten posts as for two hundred. The drain holds the wake-up as it starts
    and after each batch of at least DRAIN_BUSY posts
    (leadcrm.queue.wake_hold), so posts meanwhile publish no task of their
    own and mostly skip the broker. It stops after a look that began once
    its last hold ran out and found fewer than DRAIN_BUSY posts, so every
    post that relied on the hold is seen, and a later post wakes a new
    drain. After DRAIN_MAX_BATCHES it hands over to a new task, so a long
    burst never holds one worker process for ever.
    """
    from .tasks import drain_submissions

    size = batch_size or DRAIN_BATCH
    busy = min(DRAIN_BUSY, size)
    done = 0
    held_until = wake_hold(drain_submissions, key=WAKE_KEY)
    batches = 0
    while batches < DRAIN_MAX_BATCHES:
        hold_over = time.monotonic() > held_until
        # Posts kept as spam or given up count as taken: the look found
        # them, and more may wait behind.
        taken, batch = _claim_batch(size)
        if not taken:
            if hold_over:
                return done
            time.sleep(DRAIN_LINGER)
            continue

        if taken >= busy:
            held_until = wake_hold(drain_submissions, key=WAKE_KEY)
        if batch:
            _process_claimed(batch)
        done += len(batch)
        batches += 1
        if taken < busy and hold_over:
            return done
        if taken < size:
            time.sleep(DRAIN_LINGER)
    enqueue(drain_submissions)
    return done


def _process_claimed(batch: Sequence[tuple[int, int]]) -> None:
    alone = [pk for pk, attempts in batch if attempts > 1]
    first_tries = [pk for pk, attempts in batch if attempts == 1]
    try:
        lead_ids = _process_together(first_tries)
    except Exception:
        logger.exception(
            "A batch of %s submissions failed; processing each alone",
            len(first_tries),
        )
        alone = first_tries + alone
        lead_ids = []
    for pk in alone:
        lead_ids += _process_alone(pk)

    leads_announce(lead_ids)


def _index_scan_only() -> None:
    """Claims read the index of pending submissions in its order (oldest
    first), stopping after a batch. Each processed post leaves a dead entry
    there until the next vacuum, thousands in a burst: an index scan marks
    those it passes as dead, so the next claim skips them, while the
    bitmap scan the planner picks when it expects few pending rows visits
    every one of them again, each claim."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_bitmapscan TO off")


class Claim(NamedTuple):
    """What one look at the pending submissions took: how many rows, and
    which of them to process (id, attempts), oldest first."""

    taken: int
    to_process: list[tuple[int, int]]


def _claim_batch(size: int) -> Claim:
    """Take up to `size` pending submissions nobody holds, counting an
    attempt for each; those out of attempts are marked failed, and those
    over a rate limit on their first attempt are kept as spam, instead of
    being processed."""
    now = timezone.now()
    with transaction.atomic():
        _index_scan_only()
        held = list(
            Submission.objects.select_for_update(skip_locked=True)
            .filter(status=SubmissionStatus.PENDING)
            .exclude(leased_until__gt=now)
            .order_by("received_at")
            .values_list("pk", "attempts", "leased_until", *_LIMIT_FIELDS)[:size]
        )
        if not held:
            return Claim(0, [])
        Submission.objects.filter(pk__in=[row[0] for row in held]).update(
            attempts=F("attempts") + 1, leased_until=now + DRAIN_LEASE
        )

        claimed = [(pk, attempts + 1) for pk, attempts, _leased, *_rest in held]
        exhausted = [pk for pk, attempts in claimed if attempts > MAX_ATTEMPTS]
        if exhausted:
            logger.error("Submissions %s failed %s times", exhausted, MAX_ATTEMPTS)
            Submission.objects.filter(pk__in=exhausted).update(
                status=SubmissionStatus.FAILED,
                error=Concat(
                    Value(f"Gave up after {MAX_ATTEMPTS} attempts. "), F("error")
                ),
            )
        limited = _keep_rate_limited(
            [
                (pk, *rest)
                for pk, attempts, leased, *rest in held
                if _first_claim(attempts, leased)
            ]
        )
        return Claim(
            len(held),
            [
                (pk, attempts)
                for pk, attempts in claimed
                if attempts <= MAX_ATTEMPTS and pk not in limited
            ],
        )


def _first_claim(attempts_before: int, leased_until: datetime | None) -> bool:
    """Whether a worker takes this post for the first time, so its rate
    limits are counted: no attempt yet, and never leased. Sending a post
    back to processing starts its attempts afresh but leaves a lease (see
    `_end_leases`), so it is not counted twice."""
    return attempts_before == 0 and leased_until is None


# What a first attempt's rate limits are counted by.
_LIMIT_FIELDS = ("form_id", "remote_addr", "received_at", "released_by_id")


def _keep_rate_limited(rows: Sequence[tuple]) -> set[int]:
    """Count first attempts, (pk, *_LIMIT_FIELDS) rows, against the rate
    limits, and keep those over a limit as spam; returns their ids. A post
    a person released from the spam log is not counted again."""
    counted = [row for row in rows if row[4] is None]
    posts = [ratelimit.Post(form, addr, at) for _pk, form, addr, at, _by in counted]
    over = ratelimit.posts_over_limit(posts)
    limited = {row[0] for row, flag in zip(counted, over, strict=True) if flag}
    if limited:
        logger.info("Submissions %s kept as spam: over a rate limit", sorted(limited))
        Submission.objects.filter(pk__in=limited).update(
            status=SubmissionStatus.SPAM, spam_reason=SpamReason.RATE_LIMIT
        )
    return limited


def _process_alone(submission_id: int) -> list[int]:
    """Process one claimed submission in its own transaction; its lead's id."""
    try:
        return _process_together([submission_id])
    except Exception as exc:
        _keep_error(submission_id, exc)
        # Left pending with its attempt counted: taken again once the lease
        # ends, until MAX_ATTEMPTS.
        logger.exception("Submission %s failed to process", submission_id)
        return []


def submission_sweep_pending(*, limit: int = 1000) -> int:
    """Re-enqueue submissions still pending after a while; returns how many."""
    from .tasks import process_submission

    return sweep_pending(
        Submission.objects.all(), process_submission, what="submissions", limit=limit
    )


def sweep_pending(queryset, task, *, what: str, limit: int = 1000) -> int:
    """Re-enqueue the rows of `queryset` still pending SWEEP_AFTER_SECONDS
    after they were received, oldest first; returns how many were sent."""
    cutoff = timezone.now() - timezone.timedelta(
        seconds=settings.LEADCRM["SWEEP_AFTER_SECONDS"]
    )
    pending = list(
        queryset.filter(status=SubmissionStatus.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = sum(1 for pk in pending if enqueue(task, pk))
    if pending:
        logger.info("Sweeper re-enqueued %s of %s %s", sent, len(pending), what)
    return sent


def submission_requeue(*, submission_ids: Iterable[int]) -> int:
    """Send pending and failed submissions back to processing.

    A failed one starts afresh (status pending, no attempts, no error), so a
    person can retry after fixing the cause. Processed and spam submissions
    are left alone. Returns how many were enqueued.
    """
    ids = list(submission_ids)
    retryable = [SubmissionStatus.PENDING, SubmissionStatus.FAILED]

    with transaction.atomic():
        pending = list(
            Submission.objects.select_for_update()
            .filter(pk__in=ids, status__in=retryable)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        # A failed one was taken by a worker, so its rate limits were
        # counted: it keeps a lease (ended now) that says so (_first_claim).
        now = timezone.now()
        Submission.objects.filter(
            pk__in=pending, status=SubmissionStatus.FAILED
        ).update(
            status=SubmissionStatus.PENDING, attempts=0, error="", leased_until=now
        )
        _end_leases(pending, now)
        # After commit, so the task finds them pending.
        transaction.on_commit(lambda: _enqueue_many(pending))

    logger.info("Re-queued %s of %s submissions", len(pending), len(ids))
    return len(pending)


def _end_leases(submission_ids: Sequence[int], now: datetime) -> None:
    """End the leases of submissions sent back to processing.

    The claim that failed them, gave up on them or found them over a rate
    limit leased them for DRAIN_LEASE; the drain their wake-up starts would
    skip them until then, and nothing looks again when it ends. A lease
    ended now, not cleared, still says a worker took them once: their rate
    limits were counted then, and are not counted again.
    """
    Submission.objects.filter(pk__in=submission_ids, leased_until__gt=now).update(
        leased_until=now
    )


def _enqueue_many(submission_ids: list[int]) -> None:
    for submission_id in submission_ids:
        _enqueue_processing(submission_id)


def _record_consent(submission: Submission) -> ConsentRecord | None:
    """Keep the proof of the consent a processed submission gave, and ask
    for confirmation after commit when the form uses double opt-in."""
    if submission.consent_version is None:
        return None
    form = submission.form
    text = ConsentText.objects.filter(
        form=form, version=submission.consent_version
    ).first()
    if text is None:
        logger.error("Submission %s names a missing consent text", submission.pk)
        return None

    double = form.double_opt_in and bool(submission.lead.email)
    record, created = ConsentRecord.objects.get_or_create(
        submission=submission,
        defaults={
            "lead": submission.lead,
            "consent_text": text,
            "purpose": text.purpose,
            "given_at": submission.received_at,
            "source": _consent_source(submission),
            "language": submission.language,
            "remote_addr": submission.remote_addr,
            "double_opt_in": double,
        },
    )
    if created and double:
        transaction.on_commit(lambda: _enqueue_confirmation(record.pk))
    return record


def _consent_source(submission: Submission) -> str:
    source = f"web form {submission.form.key}"
    if submission.referer:
        source += f" on {submission.referer}"
    return source[:500]


def _enqueue_confirmation(record_id: int) -> None:
    from .tasks import send_consent_confirmation

    enqueue(send_consent_confirmation, record_id)


def consent_confirm_url(record: ConsentRecord) -> str:
    token = signing.dumps(record.pk, salt=CONSENT_SALT, compress=True)
    path = reverse("campaigns:consent_confirm", args=[token])
    return settings.LEADCRM["PUBLIC_URL"].rstrip("/") + path


def consent_confirmation_send(*, record_id: int) -> bool:
    """Email the double opt-in link, once, in the language of the post."""
    record = (
        ConsentRecord.objects.select_related("lead", "consent_text")
        .filter(pk=record_id, confirmation_sent_at__isnull=True)
        .first()
    )
    if record is None or not record.lead.email:
        return False

    with translation.override(record.language or settings.LANGUAGE_CODE):
        context = {
            "record": record,
            "text": record.consent_text.text(),
            "url": consent_confirm_url(record),
            "days": settings.LEADCRM["CONSENT_CONFIRM_DAYS"],
        }
        subject = _("Please confirm your subscription")
        body = render_to_string("campaigns/consent_confirm_email.txt", context)
    send_mail(subject, body, None, [record.lead.email])
    ConsentRecord.objects.filter(pk=record.pk).update(
        confirmation_sent_at=timezone.now()
    )

    logger.info("Consent record %s: confirmation sent", record.pk)
    return True


class ConsentLinkInvalid(Exception):
    def __init__(self, *, expired: bool):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def consent_confirm(*, token: str) -> ConsentRecord:
    """Confirm the consent a signed link names; the lead's email consent
    starts now. Confirming twice changes nothing.

    Raises ConsentLinkInvalid for a forged, unknown or expired link.
    """
    max_age = timedelta(days=settings.LEADCRM["CONSENT_CONFIRM_DAYS"])
    try:
        record_id = signing.loads(token, salt=CONSENT_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise ConsentLinkInvalid(expired=True) from None
    except signing.BadSignature:
        raise ConsentLinkInvalid(expired=False) from None

    with transaction.atomic():
        record = (
            ConsentRecord.objects.select_for_update()
            .select_related("lead")
            .filter(pk=record_id)
            .first()
        )
        if record is None:
            raise ConsentLinkInvalid(expired=False)
        if record.confirmed_at is not None:
            return record
        record.confirmed_at = timezone.now()
        record.save(update_fields=["confirmed_at"])
        lead = record.lead
        lead_ingest(
            data=LeadData(email=lead.email, phone=lead.phone, email_consent=True)
        )

    logger.info("Consent record %s confirmed", record.pk)
    return record


def submission_release(*, submission_id: int, by) -> Submission:
    """Take a post out of the spam log and process it like any other.

    Only spam can be released; the reason it was caught is kept.
    """
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.status != SubmissionStatus.SPAM:
            raise ValidationError(_("Only spam can be released."))
        if submission.form.consent_version and _is_true(
            submission.payload.get(CONSENT_FIELD)
        ):
            submission.consent_version = submission.form.consent_version
        submission.status = SubmissionStatus.PENDING
        submission.released_by = by
        submission.save(update_fields=["status", "released_by", "consent_version"])
        _end_leases([submission.pk], timezone.now())
        transaction.on_commit(lambda: _enqueue_processing(submission.pk))

    logger.info("Submission %s released from the spam log", submission.pk)
    return submission


def webform_consent_set(
    *, form: WebForm, purpose: str, text_en: str, text_vi: str
) -> ConsentText | None:
    """Make this wording the form's consent text in force.

    A changed wording is a new version (records keep pointing at the one
    they were given under); the same wording again changes nothing. A blank
    English text leaves the current version alone.
    """
    purpose, text_en, text_vi = purpose.strip(), text_en.strip(), text_vi.strip()
    current = form.consent_texts.first()
    if not text_en:
        return current
    if current and (current.purpose, current.text_en, current.text_vi) == (
        purpose,
        text_en,
        text_vi,
    ):
        return current

    with transaction.atomic():
        locked = WebForm.objects.select_for_update().get(pk=form.pk)
        version = locked.consent_version + 1
        text = ConsentText.objects.create(
            form=locked,
            version=version,
            purpose=purpose,
            text_en=text_en,
            text_vi=text_vi,
        )
        WebForm.objects.filter(pk=form.pk).update(consent_version=version)
    form.consent_version = version

    logger.info("Form %s: consent text version %s", form.pk, version)
    return text
