"""Signed deliveries from lead platforms (social and ads lead forms,
automation tools).

A platform posts JSON to `/in/<source key>/` with two headers:

- `X-LeadCRM-Timestamp`: the time of sending, in Unix seconds;
- `X-LeadCRM-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the
  source's secret, of the timestamp, a full stop and the raw body.

A delivery older than five minutes, or one whose signature was seen before,
is refused. An accepted delivery is stored first and processed by a worker
through the ingest service, idempotent on the platform's lead id.
"""

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from leadcrm.queue import enqueue
from leads.models import Channel
from leads.normalize import clean_json
from leads.services import (
    EARLIEST_INTERACTION,
    PROFILE_FIELDS,
    UTM_KEYS,
    InteractionData,
    LeadData,
    lead_ingest,
)

from .models import InboundDelivery, LeadSource, Platform, SubmissionStatus
from .services import MAX_ATTEMPTS, clean_payload, sweep_pending

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-LeadCRM-Timestamp"
SIGNATURE_HEADER = "X-LeadCRM-Signature"
MAX_AGE_SECONDS = 5 * 60
# Where platforms put their own id of the lead, most specific first.
LEAD_ID_KEYS = ("lead_id", "leadgen_id", "id")
META_KEYS = {*LEAD_ID_KEYS, "created_time", "field_data"}
KNOWN_FIELDS = {"email", "phone", *PROFILE_FIELDS, *UTM_KEYS}


class DeliveryRefused(Exception):
    """A delivery that is not accepted, with its HTTP status and reason."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status = status
        self.errors = {field: [message]}


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at `timestamp`."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    *, source: LeadSource, timestamp: str, signature: str, body: bytes, now: float
) -> None:
    """Raise DeliveryRefused unless the signature is the source's and fresh."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        raise DeliveryRefused(
            401, "timestamp", _("The timestamp header is missing or not a number.")
        ) from None
    expected = sign(secret=source.secret, timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected, signature or ""):
        raise DeliveryRefused(401, "signature", _("The signature does not match."))
    # Checked after the signature, so an unsigned caller learns nothing
    # about the clock.
    if abs(now - sent) > MAX_AGE_SECONDS:
        raise DeliveryRefused(
            401, "timestamp", _("The delivery is more than five minutes old.")
        )


def platform_lead_id(data: Mapping[str, object]) -> str:
    for key in LEAD_ID_KEYS:
        value = data.get(key)
        if value not in (None, "") and not isinstance(value, dict | list):
            return str(value).strip()[:200]
    return ""


def delivery_receive(
    *,
    source: LeadSource,
    data: Mapping[str, object],
    signature: str,
    remote_addr: str | None = None,
) -> InboundDelivery:
    """Store a verified delivery and enqueue its processing after commit.

    Raises DeliveryRefused when the body names no lead id or when the
    signature was used before (a replay).
    """
    external_id = platform_lead_id(data)
    if not external_id:
        raise DeliveryRefused(
            400, "lead_id", _("The delivery needs the platform's lead id.")
        )

    try:
        payload = clean_json(dict(data))
    except ValidationError as exc:
        raise DeliveryRefused(400, "body", " ".join(exc.messages)) from None

    try:
        with transaction.atomic():
            delivery = InboundDelivery.objects.create(
                source=source,
                external_id=external_id,
                payload=payload,
                signature=signature[:128],
                remote_addr=remote_addr,
            )
    except IntegrityError:
        logger.warning("Source %s: replayed signature refused", source.pk)
        raise DeliveryRefused(
            409, "signature", _("This delivery was received before.")
        ) from None
    transaction.on_commit(lambda: _enqueue_processing(delivery.pk))

    return delivery


def _enqueue_processing(delivery_id: int) -> None:
    from .tasks import process_inbound_delivery

    enqueue(process_inbound_delivery, delivery_id)


def delivery_to_lead_data(delivery: InboundDelivery) -> LeadData:
    """Flat keys or a `field_data` list of {name, values} (the shape lead
    ads platforms send) become lead fields; the rest is custom data."""
    fields = _flatten(delivery.payload)
    known = {name: fields.get(name, "") for name in ("email", "phone", *PROFILE_FIELDS)}
    utm = {key: fields[key] for key in UTM_KEYS if fields.get(key)}
    custom = {k: v for k, v in fields.items() if k not in KNOWN_FIELDS}
    source = delivery.source

    known["source"] = known["source"] or source.platform
    return LeadData(
        **known,
        custom=custom,
        utm=utm,
        campaign_id=source.campaign_id,
    )


def _flatten(payload: Mapping[str, object]) -> dict[str, str]:
    raw: dict[str, object] = {
        key: value for key, value in payload.items() if key not in META_KEYS
    }
    for item in payload.get("field_data") or []:
        if isinstance(item, dict) and item.get("name"):
            values = item.get("values")
            raw[str(item["name"])] = (
                values[0] if isinstance(values, list) and values else values
            )
    flat = clean_payload(raw)
    return {
        key.lower(): value[0] if isinstance(value, list) and value else str(value or "")
        for key, value in flat.items()
    }


def _occurred_at(delivery: InboundDelivery) -> datetime:
    """When the person filled in the platform's form, if it says so and
    it is plausible; else when the delivery came."""
    try:
        when = _created_time(delivery.payload.get("created_time"))
        if when is not None and EARLIEST_INTERACTION <= when <= delivery.received_at:
            return when
    except (OverflowError, ValueError, OSError):
        pass  # a time no calendar holds: not plausible either
    return delivery.received_at


def _created_time(raw: object) -> datetime | None:
    """created_time as a Unix time or an ISO 8601 string; None otherwise."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return datetime.fromtimestamp(raw, tz=UTC)
    if isinstance(raw, str):
        when = parse_datetime(raw)
        if when is not None and timezone.is_naive(when):
            when = timezone.make_aware(when)
        return when
    return None


def delivery_process(*, delivery_id: int) -> InboundDelivery | None:
    """Turn a stored delivery into a lead and an interaction. Safe to run
    twice, and a platform's redelivery of a lead adds nothing: the
    interaction's key is the source and the platform's lead id."""
    if not _claim_attempt(delivery_id):
        return InboundDelivery.objects.filter(pk=delivery_id).first()

    try:
        return _process(delivery_id)
    except Exception as exc:
        InboundDelivery.objects.filter(pk=delivery_id).update(
            error=f"{type(exc).__name__}: {exc}"[:1000]
        )
        raise


def _process(delivery_id: int) -> InboundDelivery:
    with transaction.atomic():
        delivery = (
            InboundDelivery.objects.select_for_update()
            .select_related("source")
            .get(pk=delivery_id)
        )
        if delivery.status != SubmissionStatus.PENDING:
            return delivery

        source = delivery.source
        interaction = InteractionData(
            kind=source.interaction_kind,
            channel=(
                Channel.SOCIAL if source.platform in Platform.social() else Channel.API
            ),
            occurred_at=_occurred_at(delivery),
            subject=source.name,
            details={"source": source.key, "platform_lead_id": delivery.external_id},
            idempotency_key=f"inbound:{source.pk}:{delivery.external_id}",
        )
        try:
            result = lead_ingest(
                data=delivery_to_lead_data(delivery), interactions=[interaction]
            )
        except ValidationError as exc:
            delivery.status = SubmissionStatus.FAILED
            delivery.error = "; ".join(exc.messages)
            logger.warning("Inbound delivery %s failed validation", delivery.pk)
        else:
            delivery.status = SubmissionStatus.PROCESSED
            delivery.lead = result.lead
            logger.info(
                "Inbound delivery %s processed into lead %s (new interactions=%s)",
                delivery.pk,
                result.lead.pk,
                result.interactions_created,
            )
        delivery.processed_at = timezone.now()
        delivery.save(update_fields=["status", "error", "lead", "processed_at"])

    return delivery


def _claim_attempt(delivery_id: int) -> bool:
    """Count an attempt in its own transaction, so a crash still counts it."""
    with transaction.atomic():
        delivery = (
            InboundDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        )
        if delivery is None or delivery.status != SubmissionStatus.PENDING:
            return False

        delivery.attempts += 1
        if delivery.attempts > MAX_ATTEMPTS:
            delivery.status = SubmissionStatus.FAILED
            delivery.error = f"Gave up after {MAX_ATTEMPTS} attempts. " + delivery.error
            logger.error(
                "Inbound delivery %s failed %s times", delivery.pk, MAX_ATTEMPTS
            )
        delivery.save(update_fields=["attempts", "status", "error"])

    return delivery.status == SubmissionStatus.PENDING


def delivery_sweep_pending(*, limit: int = 1000) -> int:
    """Re-enqueue deliveries still pending after a while; returns how many."""
    from .tasks import process_inbound_delivery

    return sweep_pending(
        InboundDelivery.objects.all(),
        process_inbound_delivery,
        what="inbound deliveries",
        limit=limit,
    )


def delivery_requeue(*, delivery_ids: Iterable[int]) -> int:
    """Send failed deliveries back to processing, afresh."""
    ids = list(delivery_ids)
    with transaction.atomic():
        retry = list(
            InboundDelivery.objects.select_for_update()
            .filter(
                pk__in=ids,
                status__in=[SubmissionStatus.PENDING, SubmissionStatus.FAILED],
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        InboundDelivery.objects.filter(pk__in=retry).update(
            status=SubmissionStatus.PENDING, attempts=0, error=""
        )
        transaction.on_commit(lambda: [_enqueue_processing(pk) for pk in retry])
    return len(retry)
