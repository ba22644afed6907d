"""Sending an email campaign: recipients first, then batches of messages.

Every lead the email is for gets an EmailRecipient row (unique per
campaign and lead) before anything is sent. A batch claims pending rows,
commits the claim, sends, then marks them sent. Sending a campaign again
only adds rows for leads that joined the segment since, so nobody gets it
twice; a worker that dies leaves its unclaimed rows pending for the next
batch. Rows a dead worker had claimed are failed, not resent: whether their
messages left is unknown, and a missing email is better than a duplicate.
"""

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from leadcrm.queue import enqueue
from leads.models import Lead

from .email_tracking import LinkMaker, RecipientLinks
from .emails import MERGE_FIELDS, Template, merge_values
from .models import EmailCampaign, EmailRecipient, EmailStatus, RecipientStatus
from .segments import emailable, segment_leads

logger = logging.getLogger(__name__)

_POPULATE_CHUNK = 5000
_LEAD_FIELDS = ("email_consent", "custom", *MERGE_FIELDS)


def _conf(name: str):
    return settings.LEADCRM[name]


def email_template(email_campaign: EmailCampaign) -> Template:
    """The campaign's subject and body, compiled; ValidationError if bad."""
    return Template.of(subject=email_campaign.subject, body=email_campaign.body)


def email_campaign_send(*, email_campaign_id: int, by) -> EmailCampaign:
    """Start sending, or send again to leads who joined the segment since.

    The work happens in a Celery task after commit.
    """
    if by is None or not by.has_perm("campaigns.send_emailcampaign"):
        raise PermissionDenied(_("You may not send email campaigns."))

    with transaction.atomic():
        email_campaign = EmailCampaign.objects.select_for_update().get(
            pk=email_campaign_id
        )
        template = email_template(email_campaign)
        try:
            segment_leads(email_campaign.segment)
        except ValidationError as exc:
            raise ValidationError(
                _("The segment's filters are no longer valid; fix the segment.")
            ) from exc
        if email_campaign.status == EmailStatus.SENDING:
            raise ValidationError(_("This email is being sent already."))

        if email_campaign.status == EmailStatus.DRAFT:
            email_campaign.links = list(template.links)
            email_campaign.send_started_at = timezone.now()
        email_campaign.status = EmailStatus.SENDING
        email_campaign.heartbeat_at = timezone.now()
        email_campaign.recipients_added_at = None
        email_campaign.save(
            update_fields=[
                "links",
                "send_started_at",
                "status",
                "heartbeat_at",
                "recipients_added_at",
            ]
        )
        transaction.on_commit(lambda: _enqueue_start(email_campaign.pk))

    logger.info(
        "Email campaign %s sending started by user %s", email_campaign.pk, by.pk
    )
    return email_campaign


def _enqueue_start(email_campaign_id: int) -> None:
    from .tasks import start_email_campaign

    enqueue(start_email_campaign, email_campaign_id)


def email_recipients_add(*, email_campaign_id: int) -> int:
    """Add a pending row for every emailable lead of the segment that has
    none yet; returns how many were added."""
    email_campaign = EmailCampaign.objects.select_related("segment").get(
        pk=email_campaign_id
    )
    known = EmailRecipient.objects.filter(
        email_campaign=email_campaign, lead=OuterRef("pk")
    )
    leads = (
        emailable(segment_leads(email_campaign.segment))
        .exclude(Exists(known))
        .order_by("pk")
        .values_list("pk", "email")
    )
    added = 0
    rows_iter = leads.iterator(chunk_size=_POPULATE_CHUNK)
    while chunk := list(islice(rows_iter, _POPULATE_CHUNK)):
        # A concurrent run may have added some of these: the unique
        # constraint keeps one row each.
        rows = EmailRecipient.objects.bulk_create(
            [
                EmailRecipient(email_campaign=email_campaign, lead_id=pk, email=email)
                for pk, email in chunk
            ],
            ignore_conflicts=True,
        )
        added += len(rows)
    EmailCampaign.objects.filter(pk=email_campaign.pk).update(
        recipients_added_at=timezone.now()
    )
    logger.info("Email campaign %s: %s recipients added", email_campaign.pk, added)
    return added


@dataclass
class BatchOutcome:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0


def email_batch_send(
    *, email_campaign_id: int, size: int | None = None
) -> BatchOutcome:
    """Claim up to `size` pending recipients, send their messages, record
    the outcome. A fixed number of queries whatever the size."""
    size = size or _conf("EMAIL_BATCH_SIZE")
    email_campaign = EmailCampaign.objects.get(pk=email_campaign_id)
    ids = _claim(email_campaign.pk, size)
    outcome = BatchOutcome(claimed=len(ids))
    if not ids:
        return outcome

    template = email_template(email_campaign)
    recipients = list(
        EmailRecipient.objects.filter(pk__in=ids)
        .select_related("lead")
        .only("pk", "email", *(f"lead__{name}" for name in _LEAD_FIELDS))
    )
    sent, skipped, failed = _deliver(email_campaign, template, recipients)

    now = timezone.now()
    EmailRecipient.objects.filter(pk__in=sent).update(
        status=RecipientStatus.SENT, sent_at=now
    )
    if skipped:
        EmailRecipient.objects.filter(pk__in=skipped).update(
            status=RecipientStatus.SKIPPED, error=_("No consent at sending time.")
        )
    for pk, error in failed.items():
        EmailRecipient.objects.filter(pk=pk).update(
            status=RecipientStatus.FAILED, error=error[:500]
        )
    EmailCampaign.objects.filter(pk=email_campaign.pk).update(heartbeat_at=now)

    outcome.sent, outcome.skipped, outcome.failed = len(sent), len(skipped), len(failed)
    return outcome


def _claim(email_campaign_id: int, size: int) -> list[int]:
    # Committed before sending: a second worker on the same campaign skips
    # these rows instead of waiting for them or sending them again.
    with transaction.atomic():
        ids = list(
            EmailRecipient.objects.select_for_update(skip_locked=True)
            .filter(email_campaign_id=email_campaign_id, status=RecipientStatus.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if ids:
            EmailRecipient.objects.filter(pk__in=ids).update(
                status=RecipientStatus.CLAIMED, claimed_at=timezone.now()
            )
    return ids


def _deliver(
    email_campaign: EmailCampaign,
    template: Template,
    recipients: list[EmailRecipient],
) -> tuple[list[int], list[int], dict[int, str]]:
    sent: list[int] = []
    skipped: list[int] = []
    failed: dict[int, str] = {}
    from_email = email_campaign.from_email or settings.DEFAULT_FROM_EMAIL
    link_maker = LinkMaker()
    with get_connection() as connection:
        for recipient in recipients:
            # Consent may have been withdrawn since the row was added.
            if recipient.lead.email_consent is not True:
                skipped.append(recipient.pk)
                continue
            message = build_message(
                template, recipient.lead, to=recipient.email, from_email=from_email,
                links=link_maker.for_recipient(recipient.pk),
            )  # fmt: skip
            try:
                connection.send_messages([message])
            except Exception as exc:
                # One refused address must not stop the batch.
                logger.exception("Recipient %s: sending failed", recipient.pk)
                failed[recipient.pk] = f"{type(exc).__name__}: {exc}"
            else:
                sent.append(recipient.pk)
    return sent, skipped, failed


class _Message(EmailMultiAlternatives):
    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        # The standard library otherwise picks a boundary and compiles a
        # regular expression per message to prove it absent from the parts;
        # 128 random bits make that proof needless, and it was a tenth of
        # the time of a send.
        msg.set_boundary(f"=_lc_{secrets.token_hex(16)}")
        return msg


def build_message(
    template: Template,
    lead: Lead,
    *,
    to: str,
    from_email: str,
    links: RecipientLinks | None = None,
    subject_prefix: str = "",
) -> EmailMultiAlternatives:
    """The message for one lead; without `links` it carries no tracking (a
    test send or a preview)."""
    values = merge_values(lead)
    if links is None:
        rendered = template.render(values)
        headers = {}
    else:
        unsubscribe = links.unsubscribe_url
        rendered = template.render(
            values,
            link_url=links.click_url,
            unsubscribe_url=unsubscribe,
            pixel_url=links.open_url,
        )
        # RFC 8058: mail clients offer a one-click unsubscribe button that
        # POSTs to the address.
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-LeadCRM-Recipient": links.token,
        }
    message = _Message(
        subject=subject_prefix + rendered.subject,
        body=rendered.text,
        from_email=from_email,
        to=[to],
        headers=headers,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def email_batches_run(
    *, email_campaign_id: int, time_budget: float | None = None
) -> bool:
    """Send batches at the configured rate until none is left (the campaign
    is then marked sent) or the time budget is spent. Returns whether
    recipients are still pending."""
    rate = _conf("EMAIL_RATE_PER_SECOND")
    started = time.monotonic()
    while True:
        batch_started = time.monotonic()
        outcome = email_batch_send(email_campaign_id=email_campaign_id)
        if not outcome.claimed:
            email_campaign_finish(email_campaign_id=email_campaign_id)
            return False
        if rate:
            # The rate limit: a batch of N messages takes at least N/rate s.
            pause = outcome.claimed / rate - (time.monotonic() - batch_started)
            if pause > 0:
                time.sleep(pause)
        if time_budget is not None and time.monotonic() - started > time_budget:
            return True


def email_campaign_finish(*, email_campaign_id: int) -> bool:
    """Mark the campaign sent once no row is pending or being sent."""
    unfinished = EmailRecipient.objects.filter(
        email_campaign_id=email_campaign_id,
        status__in=[RecipientStatus.PENDING, RecipientStatus.CLAIMED],
    )
    with transaction.atomic():
        email_campaign = EmailCampaign.objects.select_for_update().get(
            pk=email_campaign_id
        )
        if (
            email_campaign.status != EmailStatus.SENDING
            or email_campaign.recipients_added_at is None
            or unfinished.exists()
        ):
            return False
        email_campaign.status = EmailStatus.SENT
        email_campaign.sent_at = timezone.now()
        email_campaign.save(update_fields=["status", "sent_at"])
    logger.info("Email campaign %s sent", email_campaign_id)
    return True


def email_campaign_sweep() -> int:
    """Fail rows a dead worker claimed long ago and restart campaigns whose
    batches stopped arriving; returns how many campaigns were restarted."""
    timeout = timedelta(seconds=_conf("EMAIL_CLAIM_TIMEOUT_SECONDS"))
    cutoff = timezone.now() - timeout
    lost = EmailRecipient.objects.filter(
        status=RecipientStatus.CLAIMED, claimed_at__lt=cutoff
    ).update(
        status=RecipientStatus.FAILED,
        error=_("Interrupted while sending; not resent to avoid a duplicate."),
    )
    if lost:
        logger.warning("%s email recipients were claimed by a lost worker", lost)

    stalled = list(
        EmailCampaign.objects.filter(
            status=EmailStatus.SENDING, heartbeat_at__lt=cutoff
        ).values_list("pk", "recipients_added_at")
    )
    from .tasks import send_email_batches, start_email_campaign

    for pk, added_at in stalled:
        EmailCampaign.objects.filter(pk=pk).update(heartbeat_at=timezone.now())
        enqueue(send_email_batches if added_at else start_email_campaign, pk)
    return len(stalled)


def email_test_send(*, email_campaign: EmailCampaign, lead: Lead, to: str, by) -> None:
    """Send the email as `lead` would get it, to `to`, without tracking."""
    if by is None or not by.has_perm("campaigns.change_emailcampaign"):
        raise PermissionDenied
    message = build_message(
        email_template(email_campaign),
        lead,
        to=to,
        from_email=email_campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        subject_prefix=_("[Test] "),
    )
    message.send()
    logger.info("Email campaign %s test sent by user %s", email_campaign.pk, by.pk)


@dataclass(frozen=True)
class Progress:
    total: int
    pending: int
    sending: int
    sent: int
    skipped: int
    failed: int
    opened: int
    clicked: int
    unsubscribed: int
    bounced: int

    @property
    def done(self) -> int:
        return self.sent + self.skipped + self.failed

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    def rate(self, count: int) -> int:
        return round(100 * count / self.sent) if self.sent else 0

    @property
    def open_rate(self) -> int:
        return self.rate(self.opened)

    @property
    def click_rate(self) -> int:
        return self.rate(self.clicked)


def email_campaign_progress(email_campaign: EmailCampaign) -> Progress:
    """Counts for the campaign's page, in one query."""
    counts = EmailRecipient.objects.filter(email_campaign=email_campaign).aggregate(
        total=Count("pk"),
        **{
            name: Count("pk", filter=Q(status=status))
            for name, status in (
                ("pending", RecipientStatus.PENDING),
                ("sending", RecipientStatus.CLAIMED),
                ("sent", RecipientStatus.SENT),
                ("skipped", RecipientStatus.SKIPPED),
                ("failed", RecipientStatus.FAILED),
            )
        },
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
        bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
    )
    return Progress(**counts)


EDITABLE_FIELDS = ("campaign", "segment", "name", "from_email", "subject", "body")


def email_campaign_save(
    *, by, email_campaign: EmailCampaign | None = None, **fields
) -> EmailCampaign:
    """Create or change a draft; ValidationError for bad merge fields or an
    email that is no longer a draft."""
    if email_campaign is not None and email_campaign.pk:
        stored = EmailCampaign.objects.get(pk=email_campaign.pk)
        if not stored.is_editable:
            raise ValidationError(_("Only a draft can be changed."))
    email_campaign = email_campaign or EmailCampaign(created_by=by)
    for name in EDITABLE_FIELDS:
        if name in fields:
            setattr(email_campaign, name, fields[name])

    email_template(email_campaign)
    email_campaign.full_clean()
    email_campaign.save()
    return email_campaign
