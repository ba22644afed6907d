from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from leads.models import InteractionKind

from . import engine

# Lead fields a fit rule may test; "custom.<key>" tests a custom field.
FIT_FIELDS = (
    "email",
    "phone",
    "full_name",
    "company",
    "job_title",
    "industry",
    "city",
    "country",
    "source",
    "origin",
    "email_consent",
)


class RuleSetStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    ARCHIVED = "archived", _("Archived")


class RuleSetQuerySet(models.QuerySet):
    def active(self) -> "RuleSet | None":
        return self.filter(status=RuleSetStatus.ACTIVE).first()

    def active_rules(self) -> engine.Rules | None:
        version = (
            self.filter(status=RuleSetStatus.ACTIVE)
            .values_list("pk", flat=True)
            .first()
        )
        if version is None:
            return None
        return rules_for_version(version)


_RULES_CACHE: dict[int, engine.Rules] = {}


def rules_for_version(version: int) -> engine.Rules:
    """The engine's rules for a rule set version.

    A rule set is frozen once it leaves draft, so a version's rules never
    change and may be cached for the life of the process.
    """
    rules = _RULES_CACHE.get(version)
    if rules is None:
        rule_set = RuleSet.objects.prefetch_related(
            "engagement_rules", "fit_rules"
        ).get(pk=version)
        rules = rule_set.to_rules()
        if rule_set.status != RuleSetStatus.DRAFT:
            _RULES_CACHE[version] = rules
    return rules


class RuleSet(models.Model):
    """A version of the scoring rules. Drafts are edited; the active one
    scores every lead; a change is saved as a new version."""

    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=RuleSetStatus.choices,
        default=RuleSetStatus.DRAFT,
    )
    notes = models.TextField(_("notes"), blank=True)
    based_on = models.ForeignKey(
        "self",
        verbose_name=_("based on"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    half_life_days = models.FloatField(
        _("engagement half-life (days)"),
        default=90,
        validators=[MinValueValidator(1)],
        help_text=_("Activity this old counts half."),
    )
    temperature_half_life_days = models.FloatField(
        _("temperature half-life (days)"),
        default=14,
        validators=[MinValueValidator(1)],
    )
    window_days = models.PositiveIntegerField(
        _("cap window (days)"), default=7, validators=[MinValueValidator(1)]
    )
    mql_total = models.IntegerField(_("MQL: minimum total score"), default=50)
    mql_min_fit = models.IntegerField(_("MQL: minimum fit score"), default=20)
    warm_at = models.FloatField(_("warm from (recent points)"), default=10)
    hot_at = models.FloatField(_("hot from (recent points)"), default=30)

    bant_stated_points = models.IntegerField(
        _("BANT: points per criterion stated"), default=5
    )
    bant_confirmed_points = models.IntegerField(
        _("BANT: points per criterion confirmed"), default=15
    )
    budget_min = models.DecimalField(
        _("budget: minimum"),
        max_digits=18,
        decimal_places=2,
        default=Decimal("50000000"),
        validators=[MinValueValidator(0)],
    )
    budget_currency = models.CharField(
        _("budget: currency"), max_length=3, default="VND"
    )
    authority_keywords = models.TextField(
        _("authority: job title keywords"),
        blank=True,
        help_text=_("One per line; diacritics and case are ignored."),
    )
    timeline_max_days = models.PositiveIntegerField(
        _("timeline: purchase within (days)"), default=90
    )
    sql_min_confirmed = models.PositiveSmallIntegerField(
        _("SQL: criteria confirmed by sales"),
        default=3,
        validators=[MaxValueValidator(4)],
    )
    sql_requires_budget = models.BooleanField(_("SQL requires budget"), default=True)
    sql_requires_authority = models.BooleanField(
        _("SQL requires authority"), default=False
    )
    sql_requires_need = models.BooleanField(_("SQL requires need"), default=True)
    sql_requires_timeline = models.BooleanField(
        _("SQL requires timeline"), default=False
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("activated by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = RuleSetQuerySet.as_manager()

    class Meta:
        verbose_name = _("rule set")
        verbose_name_plural = _("rule sets")
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="active"),
                name="ruleset_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.pk} {self.name}"

    @property
    def version(self) -> int:
        return self.pk

    def clean(self) -> None:
        if self.hot_at < self.warm_at:
            raise ValidationError({"hot_at": _("Hot must start at or above warm.")})
        required = sum(
            (
                self.sql_requires_budget,
                self.sql_requires_authority,
                self.sql_requires_need,
                self.sql_requires_timeline,
            )
        )
        if required > self.sql_min_confirmed:
            raise ValidationError(
                {
                    "sql_min_confirmed": _(
                        "At least as many criteria must be confirmed as are required."
                    )
                }
            )

    def keywords(self) -> tuple[str, ...]:
        return tuple(
            w.strip() for w in self.authority_keywords.splitlines() if w.strip()
        )

    def sql_required(self) -> tuple[str, ...]:
        flags = {
            "budget": self.sql_requires_budget,
            "authority": self.sql_requires_authority,
            "need": self.sql_requires_need,
            "timeline": self.sql_requires_timeline,
        }
        return tuple(name for name, on in flags.items() if on)

    def to_rules(self) -> engine.Rules:
        return engine.Rules(
            version=self.pk,
            engagement=tuple(r.to_engine() for r in self.engagement_rules.all()),
            fit=tuple(r.to_engine() for r in self.fit_rules.all()),
            bant=engine.BantPolicy(
                stated_points=self.bant_stated_points,
                confirmed_points=self.bant_confirmed_points,
                budget_min=self.budget_min,
                budget_currency=self.budget_currency,
                authority_keywords=self.keywords(),
                timeline_max_days=self.timeline_max_days,
                sql_min_confirmed=self.sql_min_confirmed,
                sql_required=self.sql_required(),
            ),
            half_life_days=self.half_life_days,
            temperature_half_life_days=self.temperature_half_life_days,
            window_days=self.window_days,
            mql_total=self.mql_total,
            mql_min_fit=self.mql_min_fit,
            warm_at=self.warm_at,
            hot_at=self.hot_at,
        )

    def rule_labels(self) -> dict[str, str]:
        labels = {r.key: r.describe() for r in self.engagement_rules.all()}
        labels.update({r.key: r.describe() for r in self.fit_rules.all()})
        return labels


class EngagementRule(models.Model):
    rule_set = models.ForeignKey(
        RuleSet, on_delete=models.CASCADE, related_name="engagement_rules"
    )
    kind = models.CharField(
        _("interaction"), max_length=32, choices=InteractionKind.choices
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("only for campaign"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    subject = models.CharField(
        _("only for subject"),
        max_length=200,
        blank=True,
        help_text=_("A document, page or link; blank for any."),
    )
    points = models.FloatField(_("points"))
    cap = models.FloatField(
        _("cap"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("The most this rule adds in all; blank for no cap."),
    )
    window_cap = models.FloatField(
        _("cap per window"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("The most this rule adds within one window."),
    )
    label = models.CharField(_("label"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("engagement rule")
        verbose_name_plural = _("engagement rules")
        ordering = ["kind", "pk"]

    def __str__(self) -> str:
        return self.describe()

    @property
    def key(self) -> str:
        return f"eng:{self.pk}"

    def clean(self) -> None:
        if not self.points:
            raise ValidationError({"points": _("A rule must give or take points.")})

    def describe(self) -> str:
        if self.label:
            return self.label
        text = str(InteractionKind(self.kind).label)
        if self.subject:
            text += f": {self.subject}"
        return text

    def code(self) -> tuple[str, ...]:
        """describe() as codes, ("kind", kind[, subject]), for a page to put
        in its reader's language; () for a person's label, shown as written.
        """
        if self.label:
            return ()
        return (
            ("kind", self.kind, self.subject) if self.subject else ("kind", self.kind)
        )

    def to_engine(self) -> engine.EngagementRule:
        return engine.EngagementRule(
            key=self.key,
            kind=self.kind,
            points=self.points,
            cap=self.cap,
            window_cap=self.window_cap,
            campaign_id=self.campaign_id,
            subject=self.subject,
            label=self.describe(),
        )


class FitOperator(models.TextChoices):
    FILLED = "filled", _("is filled")
    EQUALS = "equals", _("equals")
    ONE_OF = "one_of", _("is one of")
    CONTAINS = "contains", _("contains any of")
    RANGE = "range", _("is a number in range")
    FREE_MAIL = "free_mail", _("is a free-mail address")
    COMPANY_MAIL = "company_mail", _("is a company address")


class FitRule(models.Model):
    rule_set = models.ForeignKey(
        RuleSet, on_delete=models.CASCADE, related_name="fit_rules"
    )
    field = models.CharField(
        _("field"),
        max_length=100,
        help_text=_("A lead field, or custom.<key> for custom data."),
    )
    operator = models.CharField(
        _("condition"), max_length=16, choices=FitOperator.choices
    )
    values = models.TextField(_("values"), blank=True, help_text=_("One per line."))
    low = models.FloatField(_("from"), null=True, blank=True)
    high = models.FloatField(_("below"), null=True, blank=True)
    points = models.IntegerField(_("points"))
    label = models.CharField(_("label"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("fit rule")
        verbose_name_plural = _("fit rules")
        ordering = ["field", "pk"]

    def __str__(self) -> str:
        return self.describe()

    @property
    def key(self) -> str:
        return f"fit:{self.pk}"

    def value_list(self) -> tuple[str, ...]:
        return tuple(v.strip() for v in self.values.splitlines() if v.strip())

    def clean(self) -> None:
        errors = {}
        custom_key = self.field.removeprefix("custom.")
        if self.field not in FIT_FIELDS and not (
            self.field.startswith("custom.") and custom_key
        ):
            errors["field"] = _("Choose a lead field or custom.<key>.")
        needs_values = self.operator in ("equals", "one_of", "contains")
        if needs_values and not self.value_list():
            errors["values"] = _("This condition needs at least one value.")
        if self.operator == "range":
            if self.low is None and self.high is None:
                errors["low"] = _("A range needs a lower or an upper bound.")
            elif None not in (self.low, self.high) and self.low >= self.high:
                errors["high"] = _("The upper bound must be above the lower one.")
        if self.operator in ("free_mail", "company_mail") and self.field != "email":
            errors["field"] = _("This condition applies to the email field.")
        if not self.points:
            errors["points"] = _("A rule must give or take points.")
        if errors:
            raise ValidationError(errors)

    def describe(self) -> str:
        if self.label:
            return self.label
        condition = FitOperator(self.operator).label
        return f"{self.field} {condition} {self.values_text()}".strip()

    def values_text(self) -> str:
        """What the condition compares with, the same in any language."""
        if self.operator == "range":
            bounds = f"{self.low if self.low is not None else '…'}–"
            return bounds + f"{self.high if self.high is not None else '…'}"
        return ", ".join(self.value_list())

    def code(self) -> tuple[str, ...]:
        """describe() as codes, ("fit", field, operator[, values]), for a page
        to put in its reader's language; () for a person's label."""
        if self.label:
            return ()
        values = self.values_text()
        head = ("fit", self.field, self.operator)
        return (*head, values) if values else head

    def to_engine(self) -> engine.FitRule:
        return engine.FitRule(
            key=self.key,
            field=self.field,
            operator=self.operator,
            points=self.points,
            values=self.value_list(),
            low=self.low,
            high=self.high,
            label=self.describe(),
        )


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RescoreJob(models.Model):
    """A bulk rescore: after a rule change, or the nightly decay refresh."""

    rule_set = models.ForeignKey(
        RuleSet, on_delete=models.CASCADE, related_name="rescore_jobs"
    )
    reason = models.CharField(_("reason"), max_length=100)
    status = models.CharField(
        _("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    total = models.PositiveIntegerField(_("leads"), default=0)
    done = models.PositiveIntegerField(_("scored"), default=0)
    level_changes = models.PositiveIntegerField(_("level changes"), default=0)
    # Touched with every batch of every slice: a redelivered task leaves a
    # job alone while a worker is visibly still running it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("rescore job")
        verbose_name_plural = _("rescore jobs")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.reason} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == JobStatus.DONE else 0
        return min(100, round(100 * self.done / self.total))


class RescoreSlice(models.Model):
    """A range of lead ids of a rescore job. Slices are separate tasks, so
    workers rescore one job in parallel; each resumes where it stopped."""

    job = models.ForeignKey(RescoreJob, on_delete=models.CASCADE, related_name="slices")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    # Every lead up to this id is scored; a redelivered slice resumes after.
    done_through = models.BigIntegerField()
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When its task was sent: a job keeps only a few slices queued or
    # running (RESCORE_PARALLEL), and each slice that ends sends the next.
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("rescore slice")
        verbose_name_plural = _("rescore slices")
        ordering = ["job", "first_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "first_id"], name="rescoreslice_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.job_id} {self.first_id}-{self.last_id} ({self.status})"
