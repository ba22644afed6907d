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
    # A worker draining pending submissions takes a batch for this long;
    # others skip it meanwhile. A crashed worker's batch is taken again later.
    leased_until = models.DateTimeField(null=True, blank=True, editable=False)
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
