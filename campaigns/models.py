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


class EventKind(models.TextChoices):
    WEBINAR = "webinar", _("Webinar")
    SEMINAR = "seminar", _("Seminar")
    EXHIBITION = "exhibition", _("Exhibition")


# Kinds a registration form must not record itself: the event records the
# registration once per person, and a second interaction would count twice.
EVENT_KINDS = (
    InteractionKind.EVENT_REGISTRATION,
    InteractionKind.WEBINAR_REGISTRATION,
    InteractionKind.EVENT_ATTENDANCE,
    InteractionKind.EVENT_NO_SHOW,
)


class Event(models.Model):
    """A webinar, seminar or exhibition of a campaign that leads register for."""

    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.PROTECT,
        related_name="events",
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"), max_length=16, choices=EventKind.choices, default=EventKind.WEBINAR
    )
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    venue = models.CharField(
        _("place"), max_length=300, blank=True, help_text=_("Address of the venue.")
    )
    online_url = models.URLField(
        _("link"), blank=True, help_text=_("Where an online event takes place.")
    )
    capacity = models.PositiveIntegerField(
        _("capacity"),
        null=True,
        blank=True,
        help_text=_(
            "Seats; registrations beyond them join the waitlist. Blank: no limit."
        ),
    )
    form = models.OneToOneField(
        WebForm,
        verbose_name=_("registration form"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="event",
        help_text=_("A processed submission of this form registers the lead."),
    )
    # Set once the periodic task has recorded the no-shows of a past event.
    no_shows_marked_at = models.DateTimeField(
        _("no-shows recorded"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-starts_at", "-id"]
        indexes = [
            # The no-show task's query: past events not yet swept.
            models.Index(
                fields=["ends_at"],
                condition=models.Q(no_shows_marked_at__isnull=True),
                name="event_no_shows_pending",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("events:detail", args=[self.pk])

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The event must end after it starts.")
        if not (self.venue.strip() or self.online_url):
            errors["venue"] = _("Give the place, the link, or both.")
        if self.form_id and self.campaign_id:
            if self.form.campaign_id != self.campaign_id:
                errors["form"] = _("The form must belong to the event's campaign.")
            elif self.form.interaction_kind in EVENT_KINDS:
                errors["form"] = _(
                    "The event records the registration itself: let the form "
                    "record something else, such as “Form submitted”."
                )
        if errors:
            raise ValidationError(errors)

    @property
    def is_over(self) -> bool:
        return self.ends_at <= timezone.now()


class RegistrationStatus(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    WAITLISTED = "waitlisted", _("Waitlisted")


class Attendance(models.TextChoices):
    UNKNOWN = "unknown", _("Not checked in")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("No-show")


class RegistrationSource(models.TextChoices):
    FORM = "form", _("Registration form")
    IMPORT = "import", _("Attendance import")


class EventRegistration(models.Model):
    """A lead's seat (or place on the waitlist) at an event, and whether
    they came. Written only by `campaigns.events`."""

    event = models.ForeignKey(
        Event,
        verbose_name=_("event"),
        on_delete=models.CASCADE,
        related_name="registrations",
    )
    lead = models.ForeignKey(
        "leads.Lead",
        verbose_name=_("lead"),
        on_delete=models.CASCADE,
        related_name="event_registrations",
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=RegistrationStatus.choices,
        default=RegistrationStatus.REGISTERED,
    )
    attendance = models.CharField(
        _("attendance"),
        max_length=16,
        choices=Attendance.choices,
        default=Attendance.UNKNOWN,
    )
    source = models.CharField(
        _("source"),
        max_length=16,
        choices=RegistrationSource.choices,
        default=RegistrationSource.FORM,
    )
    submission = models.ForeignKey(
        Submission,
        verbose_name=_("submission"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    registered_at = models.DateTimeField(_("registered"), default=timezone.now)
    attended_at = models.DateTimeField(_("checked in"), null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("checked in by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("event registration")
        verbose_name_plural = _("event registrations")
        ordering = ["registered_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "lead"], name="eventregistration_one_per_lead"
            ),
        ]
        indexes = [
            models.Index(
                fields=["event", "status", "attendance"],
                name="eventregistration_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} · {self.lead_id}"


class Platform(models.TextChoices):
    FACEBOOK = "facebook", _("Facebook lead ads")
    INSTAGRAM = "instagram", _("Instagram lead ads")
    TIKTOK = "tiktok", _("TikTok lead generation")
    ZALO = "zalo", _("Zalo")
    LINKEDIN = "linkedin", _("LinkedIn lead gen forms")
    GOOGLE_ADS = "google_ads", _("Google Ads lead forms")
    AUTOMATION = "automation", _("Automation tool")
    OTHER = "other", _("Other")

    @classmethod
    def social(cls) -> set[str]:
        return {cls.FACEBOOK, cls.INSTAGRAM, cls.TIKTOK, cls.ZALO, cls.LINKEDIN}


def _new_source_key() -> str:
    return secrets.token_urlsafe(9)


def _new_source_secret() -> str:
    return secrets.token_urlsafe(32)


class LeadSource(models.Model):
    """A lead platform that posts signed JSON to `/in/<key>/`."""

    name = models.CharField(_("name"), max_length=200)
    platform = models.CharField(
        _("platform"), max_length=16, choices=Platform.choices, default=Platform.OTHER
    )
    key = models.SlugField(
        _("key"), max_length=64, unique=True, default=_new_source_key
    )
    # Kept readable: checking an HMAC needs the secret itself, not a hash.
    secret = models.CharField(
        _("secret"),
        max_length=128,
        default=_new_source_secret,
        help_text=_("Shared with the platform to sign each delivery."),
    )
    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.PROTECT,
        related_name="lead_sources",
        null=True,
        blank=True,
    )
    interaction_kind = models.CharField(
        _("records as"),
        max_length=32,
        choices=InteractionKind.choices,
        default=InteractionKind.FORM_SUBMIT,
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lead source")
        verbose_name_plural = _("lead sources")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class InboundDelivery(models.Model):
    """A signed delivery from a lead platform, stored before it is processed."""

    source = models.ForeignKey(
        LeadSource,
        verbose_name=_("source"),
        on_delete=models.PROTECT,
        related_name="deliveries",
    )
    external_id = models.CharField(_("platform lead id"), max_length=200, db_index=True)
    payload = models.JSONField(_("payload"))
    # Unique, so a replayed request (same timestamp, body and signature) is
    # refused even when two copies arrive at once.
    signature = models.CharField(max_length=128, unique=True)
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
        related_name="inbound_deliveries",
    )
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = _("inbound delivery")
        verbose_name_plural = _("inbound deliveries")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(status="pending"),
                name="inbounddelivery_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}"
