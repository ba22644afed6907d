"""Capture: store a raw submission first, then turn it into a lead."""

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leadcrm.queue import enqueue
from leads.models import Channel
from leads.normalize import storable_text
from leads.services import (
    PROFILE_FIELDS,
    UTM_KEYS,
    InteractionData,
    LeadData,
    identity_errors,
    lead_ingest,
)

from . import events
from .models import Submission, SubmissionStatus, WebForm

logger = logging.getLogger(__name__)

# A honeypot: invisible to people, filled in by bots that fill everything.
HONEYPOT_FIELD = "website"
# Fields of a post that are about the post itself, never lead data.
CONTROL_FIELDS = {HONEYPOT_FIELD, "csrfmiddlewaretoken", "_next"}
BANT_FIELDS = {"budget", "budget_currency", "authority", "need", "timeline"}
KNOWN_FIELDS = {"email", "phone", *PROFILE_FIELDS, *UTM_KEYS, *BANT_FIELDS}
# Processing that crashes this often is a bug, not a passing fault: the
# submission is marked failed for a person instead of retried for ever.
MAX_ATTEMPTS = 8


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
) -> Submission:
    """Validate and store a form post; enqueue its processing after commit.

    Raises SubmissionRejected with field errors when the post names no valid
    email nor phone. Spam is stored as spam and answered like any other post.
    """
    meta = {
        "remote_addr": remote_addr,
        "user_agent": user_agent[:300],
        "referer": referer[:500],
    }
    if str(data.get(HONEYPOT_FIELD) or "").strip():
        logger.info("Form %s: honeypot filled, kept as spam", form.pk)
        return Submission.objects.create(
            form=form,
            payload=clean_payload(data),
            status=SubmissionStatus.SPAM,
            **meta,
        )

    payload = clean_payload(data)
    email, phone, errors = identity_errors(
        email=_first(payload.get("email")), phone=_first(payload.get("phone"))
    )
    if not (email or phone):
        # Say that either will do, next to whichever field is missing.
        hint = _("Enter an email address or a phone number.")
        for name in ("email", "phone"):
            errors.setdefault(name, [hint])
        raise SubmissionRejected(errors)

    # A single INSERT commits by itself; on_commit then runs at once, or
    # after the caller's transaction when there is one.
    submission = Submission.objects.create(form=form, payload=payload, **meta)
    transaction.on_commit(lambda: _enqueue_processing(submission.pk))

    return submission


def _first(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


def _enqueue_processing(submission_id: int) -> None:
    from .tasks import process_submission

    enqueue(process_submission, submission_id)


def submission_to_lead_data(submission: Submission) -> LeadData:
    payload = submission.payload
    fields = {name: _first(payload.get(name)) for name in ("email", "phone")}
    fields.update({name: _first(payload.get(name)) for name in PROFILE_FIELDS})
    utm = {key: _first(payload.get(key)) for key in UTM_KEYS if payload.get(key)}
    custom = {k: v for k, v in payload.items() if k not in KNOWN_FIELDS}

    fields["source"] = fields["source"] or utm.get("utm_source", "") or "web_form"
    return LeadData(
        **fields,
        custom=custom,
        utm=utm,
        campaign_id=submission.form.campaign_id,
        bant=stated_bant(payload, received=submission.received_at.date()),
    )


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


def parse_amount(raw: str, currency: str) -> Decimal | None:
    """Read "50.000.000", "50,000,000" or "50 000 000" as fifty million.

    Dong have no minor unit, so every separator in a VND amount groups
    thousands; other currencies keep a decimal part after the last one.
    """
    text = raw.strip()
    if not text:
        return None
    if currency == "VND":
        digits = re.sub(r"\D", "", text)
        return Decimal(digits) if digits else None
    text = re.sub(r"[^\d.,]", "", text)
    whole, sep, fraction = text.replace(",", ".").rpartition(".")
    if sep and len(fraction) != 3:
        text = whole.replace(".", "") + "." + fraction
    else:
        text = text.replace(".", "").replace(",", "")
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def parse_timeline(raw: str, received: date) -> date | None:
    text = raw.strip()
    if not text:
        return None
    if text.isdigit():
        return received + timedelta(days=min(int(text), 3650))
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def submission_process(*, submission_id: int) -> Submission | None:
    """Turn a stored submission into a lead and an interaction.

    Safe to run twice: a processed submission is left alone, and the
    interaction's idempotency key is the submission id.
    """
    if not _claim_attempt(submission_id):
        return Submission.objects.filter(pk=submission_id).first()

    try:
        return _process(submission_id)
    except Exception as exc:
        # Kept for the person who reads a submission that never went
        # through; the attempt is retried until MAX_ATTEMPTS.
        Submission.objects.filter(pk=submission_id).update(
            error=f"{type(exc).__name__}: {exc}"[:1000]
        )
        raise


def _process(submission_id: int) -> Submission:
    with transaction.atomic():
        submission = (
            Submission.objects.select_for_update()
            .select_related("form")
            .get(pk=submission_id)
        )
        if submission.status != SubmissionStatus.PENDING:
            return submission

        interaction = InteractionData(
            kind=submission.form.interaction_kind,
            channel=Channel.WEB_FORM,
            occurred_at=submission.received_at,
            details={"form": submission.form.key, "submission": submission.pk},
            idempotency_key=f"submission:{submission.pk}",
        )
        try:
            result = lead_ingest(
                data=submission_to_lead_data(submission), interactions=[interaction]
            )
        except ValidationError as exc:
            submission.status = SubmissionStatus.FAILED
            submission.error = "; ".join(exc.messages)
            logger.warning("Submission %s failed validation", submission.pk)
        else:
            submission.status = SubmissionStatus.PROCESSED
            submission.lead = result.lead
            # An event's registration form: the lead takes a seat.
            events.registration_from_submission(submission=submission, lead=result.lead)
            logger.info(
                "Submission %s processed into lead %s (created=%s)",
                submission.pk,
                result.lead.pk,
                result.created,
            )
        submission.processed_at = timezone.now()
        submission.save(update_fields=["status", "error", "lead", "processed_at"])

    return submission


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

    return submission.status == SubmissionStatus.PENDING


def submission_sweep_pending(*, limit: int = 1000) -> int:
    """Re-enqueue submissions still pending after a while; returns how many."""
    cutoff = timezone.now() - timezone.timedelta(
        seconds=settings.LEADCRM["SWEEP_AFTER_SECONDS"]
    )
    pending = list(
        Submission.objects.filter(
            status=SubmissionStatus.PENDING, received_at__lt=cutoff
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    from .tasks import process_submission

    sent = sum(1 for pk in pending if enqueue(process_submission, pk))
    if pending:
        logger.info(
            "Sweeper re-enqueued %s of %s pending submissions", sent, len(pending)
        )
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
        Submission.objects.filter(
            pk__in=pending, status=SubmissionStatus.FAILED
        ).update(status=SubmissionStatus.PENDING, attempts=0, error="")
        # After commit, so the task finds them pending.
        transaction.on_commit(lambda: _enqueue_many(pending))

    logger.info("Re-queued %s of %s submissions", len(pending), len(ids))
    return len(pending)


def _enqueue_many(submission_ids: list[int]) -> None:
    for submission_id in submission_ids:
        _enqueue_processing(submission_id)
