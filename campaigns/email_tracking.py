"""What leads do with an email: opens, clicks, unsubscribes and bounces.

Each becomes an interaction through `leads.services.lead_ingest`, with an
idempotency key per recipient (and per link for clicks), so a mail client
that loads the pixel ten times or a bounce report read twice records it
once; the ingest's announcement rescores the lead after commit.
"""

import csv
import io
import logging
from dataclasses import dataclass
from urllib.parse import urljoin

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from leads.models import Channel, InteractionKind, Lead
from leads.normalize import normalize_email
from leads.services import InteractionData, LeadData, lead_ingest

from .models import BounceKind, EmailRecipient, RecipientStatus

logger = logging.getLogger(__name__)

# Opens, clicks and bounce reports share a token; unsubscribing has its
# own, so an image proxy that loads the pixel cannot unsubscribe anyone.
_TRACKING = "campaigns.email.tracking"
_UNSUBSCRIBE = "campaigns.email.unsubscribe"
_PLACEHOLDER = "TOKEN"


class BadToken(Exception):
    """A tracking link that was not made here, or names what is not there."""


@dataclass(frozen=True)
class RecipientLinks:
    """One message's tracking addresses and the token for its header."""

    token: str
    open_url: str
    unsubscribe_url: str
    click_prefix: str

    def click_url(self, index: int) -> str:
        return f"{self.click_prefix}{index}/"


class LinkMaker:
    """Makes the tracking addresses of many messages: the URL patterns are
    resolved and the signers keyed once, not once per message."""

    def __init__(self):
        self._tracking = signing.Signer(salt=_TRACKING)
        self._unsubscribe = signing.Signer(salt=_UNSUBSCRIBE)
        base = settings.LEADCRM["PUBLIC_URL"]

        def pattern(name: str, *args) -> str:
            path = reverse(f"email_tracking:{name}", args=[_PLACEHOLDER, *args])
            return urljoin(base, path)

        self._open = pattern("open")
        self._unsubscribe_url = pattern("unsubscribe")
        self._click = pattern("click", 0).removesuffix("0/")

    def for_recipient(self, recipient_id: int) -> RecipientLinks:
        token = self._tracking.sign(str(recipient_id))
        unsubscribe = self._unsubscribe.sign(str(recipient_id))
        return RecipientLinks(
            token=token,
            open_url=self._open.replace(_PLACEHOLDER, token),
            unsubscribe_url=self._unsubscribe_url.replace(_PLACEHOLDER, unsubscribe),
            click_prefix=self._click.replace(_PLACEHOLDER, token),
        )


def _recipient_id(salt: str, token: str) -> int:
    try:
        value = signing.Signer(salt=salt).unsign(token)
    except signing.BadSignature as exc:
        raise BadToken from exc
    if not value.isdigit():
        raise BadToken
    return int(value)


def read_tracking_token(token: str) -> int:
    """The recipient of an open, a click or a bounce report's header."""
    return _recipient_id(_TRACKING, token)


def read_unsubscribe_token(token: str) -> int:
    return _recipient_id(_UNSUBSCRIBE, token)


def _recipient(recipient_id: int) -> EmailRecipient:
    recipient = (
        EmailRecipient.objects.select_related("email_campaign", "lead")
        .filter(pk=recipient_id)
        .first()
    )
    if recipient is None:
        raise BadToken
    return recipient


def _ingest(
    recipient: EmailRecipient,
    *,
    kind: str,
    key: str,
    subject: str = "",
    details: dict | None = None,
    email_consent: bool | None = None,
) -> None:
    lead: Lead = recipient.lead
    campaign = recipient.email_campaign
    lead_ingest(
        # The lead's own identity finds the lead itself.
        data=LeadData(
            email=lead.email,
            phone=lead.phone,
            external_id=lead.external_id,
            email_consent=email_consent,
        ),
        interactions=[
            InteractionData(
                kind=kind,
                channel=Channel.EMAIL,
                subject=subject or campaign.name,
                campaign_id=campaign.campaign_id,
                details={
                    "email_campaign": campaign.pk,
                    "recipient": recipient.pk,
                    **(details or {}),
                },
                idempotency_key=key,
            )
        ],
    )


def _stamp(recipient: EmailRecipient, field: str, **extra) -> None:
    """Set a first-time stamp once; later events leave it as it was."""
    EmailRecipient.objects.filter(pk=recipient.pk, **{f"{field}__isnull": True}).update(
        **{field: timezone.now()}, **extra
    )


@transaction.atomic
def email_open_record(*, recipient_id: int) -> None:
    recipient = _recipient(recipient_id)
    _stamp(recipient, "opened_at")
    _ingest(
        recipient, kind=InteractionKind.EMAIL_OPEN, key=f"email-open:{recipient.pk}"
    )


@transaction.atomic
def email_click_record(*, recipient_id: int, index: int) -> str:
    """Record a click and return where it leads: only ever one of the
    email's own links, whatever the address says."""
    recipient = _recipient(recipient_id)
    links = recipient.email_campaign.links
    if index >= len(links):
        raise BadToken
    url = links[index]

    _stamp(recipient, "clicked_at")
    # A click proves the email was opened, even with images blocked.
    _stamp(recipient, "opened_at")
    _ingest(
        recipient,
        kind=InteractionKind.EMAIL_CLICK,
        key=f"email-click:{recipient.pk}:{index}",
        subject=url[:200],
        details={"link": index},
    )
    return url


@transaction.atomic
def email_unsubscribe(*, recipient_id: int) -> EmailRecipient:
    """Withdraw the lead's email consent: no later campaign reaches them."""
    recipient = _recipient(recipient_id)
    _stamp(recipient, "unsubscribed_at")
    _ingest(
        recipient,
        kind=InteractionKind.UNSUBSCRIBE,
        key=f"email-unsubscribe:{recipient.pk}",
        email_consent=False,
    )
    logger.info(
        "Lead %s unsubscribed (email campaign %s)",
        recipient.lead_id,
        recipient.email_campaign_id,
    )
    return recipient


@dataclass(frozen=True)
class Bounce:
    email: str = ""
    kind: str = BounceKind.HARD
    reason: str = ""
    # The X-LeadCRM-Recipient header of the bounced message, when the
    # report carries it; otherwise the latest message to the address.
    recipient_token: str = ""


def email_bounce_record(*, bounce: Bounce) -> EmailRecipient | None:
    """Record a bounce report; None when it names no message sent from here."""
    if bounce.kind not in BounceKind.values:
        raise ValueError(f"Unknown bounce kind: {bounce.kind!r}")
    recipient_id = _bounced_recipient_id(bounce)
    if recipient_id is None:
        return None

    with transaction.atomic():
        recipient = _recipient(recipient_id)
        _stamp(recipient, "bounced_at", bounce_kind=bounce.kind)
        if bounce.kind == BounceKind.HARD:
            # A hard bounce after a soft one still keeps the address out.
            EmailRecipient.objects.filter(pk=recipient.pk).update(
                bounce_kind=BounceKind.HARD
            )
        _ingest(
            recipient,
            kind=InteractionKind.EMAIL_BOUNCE,
            key=f"email-bounce:{recipient.pk}",
            details={"bounce": bounce.kind, "reason": bounce.reason[:200]},
        )
    logger.info("Bounce (%s) recorded for recipient %s", bounce.kind, recipient.pk)
    return recipient


def _bounced_recipient_id(bounce: Bounce) -> int | None:
    if bounce.recipient_token:
        try:
            return read_tracking_token(bounce.recipient_token)
        except BadToken:
            logger.warning("Bounce report with a bad recipient token")
            return None
    try:
        email = normalize_email(bounce.email)
    except ValidationError:
        return None
    return (
        EmailRecipient.objects.filter(email=email, status=RecipientStatus.SENT)
        .order_by(F("sent_at").desc(nulls_last=True), "-pk")
        .values_list("pk", flat=True)
        .first()
    )


def bounce_from(item: dict) -> Bounce:
    """One report item; ValueError when it names neither message nor address."""
    kind = str(item.get("kind") or BounceKind.HARD).lower()
    if kind not in BounceKind.values:
        raise ValueError(kind)
    bounce = Bounce(
        email=str(item.get("email") or ""),
        kind=kind,
        reason=str(item.get("reason") or "")[:200],
        recipient_token=str(item.get("recipient") or ""),
    )
    if not (bounce.email or bounce.recipient_token):
        raise ValueError("no email or recipient")
    return bounce


def bounces_read_csv(text: str) -> list[Bounce]:
    """A CSV with the columns email, kind, reason, recipient (header line)."""
    return [bounce_from(row) for row in csv.DictReader(io.StringIO(text))]
