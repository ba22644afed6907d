import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leads.models import InteractionKind


class CampaignKind(models.TextChoices):
    NEWSLETTER = "newsletter", _("Newsletter")
    EBOOK = "ebook", _("Ebook")
    WEBINAR = "webinar", _("Webinar")
    SEMINAR = "seminar", _("Seminar")
    EXHIBITION = "exhibition", _("Exhibition")
    ADS = "ads", _("Ads")
    SOCIAL = "social", _("Social")
    OTHER = "other", _("Other")


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"), max_length=16, choices=CampaignKind.choices, default="other"
    )
    utm_campaign = models.SlugField(
        _("UTM code"), max_length=100, blank=True, help_text=_("utm_campaign value")
    )
    starts_on = models.DateField(_("starts on"), null=True, blank=True)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    budget = models.DecimalField(
        _("budget"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, default="VND")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


def _new_form_key() -> str:
    return secrets.token_urlsafe(12)


class WebForm(models.Model):
    """A form on some website that posts to `/f/<key>/`."""

    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="forms",
    )
    name = models.CharField(_("name"), max_length=200)
    key = models.SlugField(_("key"), max_length=64, unique=True, default=_new_form_key)
    interaction_kind = models.CharField(
        _("records as"),
        max_length=32,
        choices=InteractionKind.choices,
        default=InteractionKind.FORM_SUBMIT,
    )
    thank_you_url = models.URLField(
        _("thank-you page"),
        blank=True,
        help_text=_("Where a browser goes after submitting; blank for our own page."),
    )
    allowed_origins = models.TextField(
        _("allowed origins"),
        blank=True,
        help_text=_(
            "One origin per line (https://example.com). Blank accepts any origin."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("web form")
        verbose_name_plural = _("web forms")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def origin_allowed(self, origin: str | None) -> bool:
        allowed = {o.strip().rstrip("/") for o in self.allowed_origins.split() if o}
        if not allowed or not origin:
            return True
        return origin.rstrip("/") in allowed


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")
    SPAM = "spam", _("Spam")


class Submission(models.Model):
    """A raw form post, stored before anything else happens to it."""

    form = models.ForeignKey(
        WebForm,
        verbose_name=_("form"),
        on_delete=models.PROTECT,
        related_name="submissions",
    )
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=SubmissionStatus.choices,
        default=SubmissionStatus.PENDING,
    )
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)
    lead = models.ForeignKey(
        "leads.Lead",
        verbose_name=_("lead"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="submissions",
    )
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    referer = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        ordering = ["-received_at", "-id"]
        indexes = [
            # The sweeper's query: pending submissions, oldest first.
            models.Index(
                fields=["received_at"],
                condition=models.Q(status="pending"),
                name="submission_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}"


class Segment(models.Model):
    """A saved filter over leads; its members are worked out when used."""

    name = models.CharField(_("name"), max_length=200)
    # The segment filter's query parameters (campaigns.segments.SegmentFilter),
    # kept as submitted so the form shows them again as they were typed.
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class EmailStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")


class EmailCampaign(models.Model):
    """One email sent to a segment, with merge fields and tracking."""

    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.PROTECT,
        related_name="emails",
    )
    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        on_delete=models.PROTECT,
        related_name="emails",
    )
    name = models.CharField(_("name"), max_length=200)
    from_email = models.CharField(
        _("from"),
        max_length=254,
        blank=True,
        help_text=_("Blank for the site's default sender."),
    )
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(
        _("body"),
        help_text=_(
            "Plain text. Merge fields such as {first_name|there} are replaced "
            "for each lead; web addresses become tracked links."
        ),
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=EmailStatus.choices,
        default=EmailStatus.DRAFT,
    )
    # The body's links in order, frozen when sending starts: a click link
    # names an index into this list, so it can only lead to these.
    links = models.JSONField(default=list, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    send_started_at = models.DateTimeField(_("sending started"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    # When the segment's leads were last added as recipients; cleared by
    # each send, so no batch calls the email sent before they are there.
    recipients_added_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by every batch: the sweeper restarts a campaign whose batches
    # stopped arriving (a broker outage, a lost worker).
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("email campaign")
        verbose_name_plural = _("email campaigns")
        ordering = ["-created_at", "-id"]
        permissions = [("send_emailcampaign", _("Can send an email campaign"))]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("emails:detail", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        return self.status == EmailStatus.DRAFT


class RecipientStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CLAIMED = "claimed", _("Sending")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class BounceKind(models.TextChoices):
    HARD = "hard", _("Hard (address does not exist)")
    SOFT = "soft", _("Soft (mailbox full, server down)")


class EmailRecipient(models.Model):
    """One lead's copy of an email campaign.

    The row exists before the message is sent and is claimed by one batch
    at a time: the unique constraint is what makes a campaign sent twice
    reach nobody twice.
    """

    email_campaign = models.ForeignKey(
        EmailCampaign,
        verbose_name=_("email campaign"),
        on_delete=models.CASCADE,
        related_name="recipients",
    )
    lead = models.ForeignKey(
        "leads.Lead",
        verbose_name=_("lead"),
        on_delete=models.CASCADE,
        related_name="email_recipients",
    )
    email = models.CharField(_("email"), max_length=254)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=RecipientStatus.choices,
        default=RecipientStatus.PENDING,
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("bounced"), null=True, blank=True)
    bounce_kind = models.CharField(
        _("bounce"), max_length=8, choices=BounceKind.choices, blank=True
    )

    class Meta:
        verbose_name = _("email recipient")
        verbose_name_plural = _("email recipients")
        ordering = ["email_campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["email_campaign", "lead"], name="email_recipient_once"
            ),
        ]
        indexes = [
            # A batch claims the campaign's pending rows in id order.
            models.Index(
                fields=["email_campaign", "id"],
                condition=models.Q(status="pending"),
                name="email_recipient_pending",
            ),
            models.Index(fields=["email"], name="email_recipient_email"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}"
