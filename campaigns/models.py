import secrets
from functools import cached_property

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
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
        constraints = [
            # Attribution looks campaigns up by UTM code: two with one code
            # would split its leads. Blank codes are many.
            models.UniqueConstraint(
                fields=["utm_campaign"],
                condition=~models.Q(utm_campaign=""),
                name="campaign_unique_utm",
                violation_error_message=_("Another campaign uses this UTM code."),
            ),
            models.CheckConstraint(
                condition=models.Q(budget__isnull=True) | models.Q(budget__gte=0),
                name="campaign_budget_not_negative",
                violation_error_message=_("The budget cannot be negative."),
            ),
            models.CheckConstraint(
                condition=models.Q(starts_on__isnull=True)
                | models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="campaign_ends_after_start",
                violation_error_message=_("The campaign cannot end before it starts."),
            ),
        ]

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
    thank_you_message_en = models.TextField(
        _("thank-you message (English)"),
        blank=True,
        help_text=_("Shown after a post when there is no thank-you page."),
    )
    thank_you_message_vi = models.TextField(
        _("thank-you message (Vietnamese)"), blank=True
    )
    capture_utm = models.BooleanField(
        _("capture UTM parameters"),
        default=True,
        help_text=_("Hidden fields take utm_* from the address of the page."),
    )
    double_opt_in = models.BooleanField(
        _("double opt-in"),
        default=False,
        help_text=_(
            "Email consent starts only when the person confirms it from an email."
        ),
    )
    require_render_token = models.BooleanField(
        _("refuse posts without a render token"),
        default=False,
        help_text=_(
            "Posts that did not come from our hosted page or embed script go to "
            "the spam log. Leave off for plain HTML copies of the form."
        ),
    )
    min_fill_seconds = models.PositiveSmallIntegerField(
        _("minimum seconds to fill in"),
        default=3,
        help_text=_("A post sooner than this after the form was shown is spam."),
    )
    # The version of the consent text in force (0: none yet); a submission
    # keeps the version it was shown.
    consent_version = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("web form")
        verbose_name_plural = _("web forms")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def thanks_url(self) -> str:
        """Where a browser goes after posting: capture looks a form up once
        for many posts, so this is worked out once too."""
        return self.thank_you_url or reverse("campaigns:thanks", args=[self.key])

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


class SpamReason(models.TextChoices):
    HONEYPOT = "honeypot", _("Honeypot filled in")
    TOO_FAST = "too_fast", _("Sent too fast")
    BAD_TOKEN = "bad_token", _("Forged or stale form token")
    NO_TOKEN = "no_token", _("No form token")
    RATE_LIMIT = "rate_limit", _("Rate limit")


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
    spam_reason = models.CharField(
        _("spam reason"), max_length=16, choices=SpamReason.choices, blank=True
    )
    language = models.CharField(_("language"), max_length=8, blank=True)
    consent_version = models.PositiveIntegerField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("released by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

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
            # The spam log, newest first.
            models.Index(
                fields=["-received_at"],
                condition=models.Q(status="spam"),
                name="submission_spam",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}"


class FormFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    TEXTAREA = "textarea", _("Long text")
    EMAIL = "email", _("Email")
    TEL = "tel", _("Phone")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHECKBOX = "checkbox", _("Checkbox")


# The lead fields a builder may put on a form, with the input each needs and
# its default label. Any other name is a custom field kept with the lead.
LEAD_FIELDS: dict[str, tuple[str, str]] = {
    "full_name": (FormFieldType.TEXT, _("Full name")),
    "first_name": (FormFieldType.TEXT, _("First name")),
    "last_name": (FormFieldType.TEXT, _("Last name")),
    "email": (FormFieldType.EMAIL, _("Email")),
    "phone": (FormFieldType.TEL, _("Phone")),
    "company": (FormFieldType.TEXT, _("Company")),
    "job_title": (FormFieldType.TEXT, _("Job title")),
    "industry": (FormFieldType.TEXT, _("Industry")),
    "city": (FormFieldType.TEXT, _("City")),
    "country": (FormFieldType.TEXT, _("Country")),
    "budget": (FormFieldType.TEXT, _("Budget (VND)")),
    "authority": (FormFieldType.TEXT, _("Your role in the purchase")),
    "need": (FormFieldType.TEXTAREA, _("What do you need?")),
    "timeline": (FormFieldType.DATE, _("When do you plan to buy?")),
    "consent": (FormFieldType.CHECKBOX, _("I agree to receive marketing emails")),
}
# The consent checkbox's field name in a post.
CONSENT_FIELD = "consent"


class FormField(models.Model):
    """One input of a web form, as the builder placed it."""

    form = models.ForeignKey(
        WebForm,
        verbose_name=_("form"),
        on_delete=models.CASCADE,
        related_name="fields",
    )
    name = models.SlugField(
        _("field"),
        max_length=64,
        help_text=_("A lead field, or any other name for a custom field."),
    )
    input_type = models.CharField(
        _("input"),
        max_length=16,
        choices=FormFieldType.choices,
        default=FormFieldType.TEXT,
        help_text=_("Lead fields always use their own input."),
    )
    label_en = models.CharField(_("label (English)"), max_length=200, blank=True)
    label_vi = models.CharField(_("label (Vietnamese)"), max_length=200, blank=True)
    required = models.BooleanField(_("required"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("form field")
        verbose_name_plural = _("form fields")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["form", "name"], name="formfield_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_lead_field(self) -> bool:
        return self.name in LEAD_FIELDS

    @property
    def widget(self) -> str:
        if self.is_lead_field:
            return LEAD_FIELDS[self.name][0]
        return self.input_type

    def label(self, language: str | None = None) -> str:
        """The label in the given language, falling back to English, then
        to the lead field's own name."""
        language = (language or get_language() or "en")[:2]
        chosen = self.label_vi if language == "vi" else self.label_en
        if chosen or self.label_en:
            return chosen or self.label_en
        if self.is_lead_field:
            return str(LEAD_FIELDS[self.name][1])
        return self.name.replace("_", " ").capitalize()


class ConsentText(models.Model):
    """A version of a form's consent wording. A record names the version a
    person agreed to, so a text is never edited in place: a change is a new
    version."""

    form = models.ForeignKey(
        WebForm,
        verbose_name=_("form"),
        on_delete=models.CASCADE,
        related_name="consent_texts",
    )
    version = models.PositiveIntegerField(_("version"))
    purpose = models.CharField(_("purpose"), max_length=200)
    text_en = models.TextField(_("text (English)"))
    text_vi = models.TextField(_("text (Vietnamese)"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("consent text")
        verbose_name_plural = _("consent texts")
        ordering = ["form", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["form", "version"], name="consenttext_unique_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.form} v{self.version}"

    def text(self, language: str | None = None) -> str:
        language = (language or get_language() or "en")[:2]
        return (self.text_vi if language == "vi" else "") or self.text_en


class ConsentRecord(models.Model):
    """Proof of one consent: who, to which purpose and wording, when and
    through which source (GDPR art. 7; Vietnam decree 13/2023 art. 11)."""

    lead = models.ForeignKey(
        "leads.Lead",
        verbose_name=_("lead"),
        on_delete=models.CASCADE,
        related_name="consent_records",
    )
    consent_text = models.ForeignKey(
        ConsentText,
        verbose_name=_("consent text"),
        on_delete=models.PROTECT,
        related_name="records",
    )
    submission = models.OneToOneField(
        "Submission",
        verbose_name=_("submission"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="consent_record",
    )
    purpose = models.CharField(_("purpose"), max_length=200)
    given_at = models.DateTimeField(_("given"))
    source = models.CharField(_("source"), max_length=500)
    language = models.CharField(_("language"), max_length=8, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    double_opt_in = models.BooleanField(_("double opt-in"), default=False)
    confirmation_sent_at = models.DateTimeField(
        _("confirmation sent"), null=True, blank=True
    )
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-given_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.purpose}"

    @property
    def is_effective(self) -> bool:
        return not self.double_opt_in or self.confirmed_at is not None


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
