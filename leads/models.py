from django.conf import settings
from django.db import models
from django.db.models import Lookup, Q
from django.db.models.sql.query import Query
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Level(models.TextChoices):
    IQL = "iql", _("IQL")
    MQL = "mql", _("MQL")
    SQL = "sql", _("SQL")

    @classmethod
    def rank(cls, level: str) -> int:
        return [choice.value for choice in cls].index(level)


class Temperature(models.TextChoices):
    COLD = "cold", _("Cold")
    WARM = "warm", _("Warm")
    HOT = "hot", _("Hot")


class LeadStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DISQUALIFIED = "disqualified", _("Disqualified")
    CUSTOMER = "customer", _("Customer")


class ReasonCode(models.TextChoices):
    NOT_A_FIT = "not_a_fit", _("Not a fit")
    NO_BUDGET = "no_budget", _("No budget")
    NO_AUTHORITY = "no_authority", _("No authority")
    NO_NEED = "no_need", _("No need")
    NOT_NOW = "not_now", _("Not now (timing)")
    DUPLICATE = "duplicate", _("Duplicate")
    SPAM = "spam", _("Spam")
    UNREACHABLE = "unreachable", _("Unreachable")
    OTHER = "other", _("Other")


@models.ForeignKey.register_lookup
class AnyOf(Lookup):
    """`column IN (subquery)` that PostgreSQL can answer from an index
    inside an OR.

    Under an OR, PostgreSQL checks `IN (subquery)` row by row, so a rule such
    as "mine, or my team's pool" reads every sales lead. Written
    `= ANY(ARRAY(subquery))`, the subquery runs once before the scan and its
    few ids become an index condition: each arm of the OR is one index scan.
    Other databases get plain IN.
    """

    lookup_name = "any_of"

    def get_prep_lookup(self):
        # As for IN: the order of the subquery's rows is of no use.
        if isinstance(self.rhs, Query):
            self.rhs.clear_ordering(clear_default=True)
        return super().get_prep_lookup()

    def _sides(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return lhs, rhs, (*lhs_params, *rhs_params)

    def as_sql(self, compiler, connection):
        lhs, rhs, params = self._sides(compiler, connection)
        return f"{lhs} IN {rhs}", params

    def as_postgresql(self, compiler, connection):
        lhs, rhs, params = self._sides(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", params


class LeadQuerySet(models.QuerySet):
    def visible_to(self, user) -> "LeadQuerySet":
        """The one place that decides which leads a user may see.

        Every page, API endpoint, export and search filters through here.
        A user needs a role (a group giving leads.view_lead) to see leads;
        the sales hand-off narrows sales reps to their own leads.
        """
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser or user.has_perm("leads.view_all_leads"):
            return self
        if not user.has_perm("leads.view_lead"):
            return self.none()
        return self.filter(self._sales_scope(user))

    @staticmethod
    def _sales_scope(user) -> Q:
        """A rep's own leads, the team's unowned pool where the team keeps
        one, and for a manager every lead of the teams they manage.

        Subqueries rather than joins: a lead appears once, and the rule costs
        one query whatever the size of the teams. `any_of` keeps each arm
        of the OR an index scan.
        """
        pool_teams = TeamMember.objects.filter(user=user, team__uses_pool=True).values(
            "team_id"
        )
        managed = Team.objects.filter(manager=user).values("pk")
        managed_reps = TeamMember.objects.filter(team__manager=user).values("user_id")
        return (
            Q(owner=user)
            | Q(owner__isnull=True, team__any_of=pool_teams)
            | Q(team__any_of=managed)
            | Q(owner__any_of=managed_reps)
        )


class Team(models.Model):
    """A sales team: its manager, its reps and how MQLs reach them."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("manager"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_teams",
    )
    uses_pool = models.BooleanField(
        _("unassigned pool"),
        default=False,
        help_text=_("Reps also see the team's leads that have no owner yet."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMember(models.Model):
    """A sales rep's place in one team, with the capacity round robin respects."""

    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="members"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="team_membership",
    )
    capacity = models.PositiveIntegerField(
        _("capacity"), default=50, help_text=_("Most open leads the rep can hold.")
    )
    is_active = models.BooleanField(
        _("takes new leads"),
        default=True,
        help_text=_("Off while a rep is away: round robin passes them by."),
    )
    last_assigned_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("team member")
        verbose_name_plural = _("team members")
        ordering = ["team", "user"]

    def __str__(self) -> str:
        return f"{self.user} ({self.team})"


class Lead(models.Model):
    """A person who may buy. Written only by `leads.services`."""

    email = models.CharField(_("email"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    external_id = models.CharField(
        _("external id"),
        max_length=100,
        blank=True,
        help_text=_("The lead's id in the system it was imported from."),
    )
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    job_title = models.CharField(_("job title"), max_length=200, blank=True)
    industry = models.CharField(_("industry"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=100, blank=True)
    source = models.CharField(_("source"), max_length=100, blank=True)
    origin = models.CharField(_("origin"), max_length=100, blank=True)
    custom = models.JSONField(_("custom data"), default=dict, blank=True)

    email_consent = models.BooleanField(
        _("email consent"),
        null=True,
        help_text=_("Unknown until the lead or a source system says."),
    )
    known_outcome = models.BooleanField(
        _("known outcome"),
        null=True,
        help_text=_("Whether the lead converted, where a source system knows."),
    )

    first_touch_campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("first-touch campaign"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    last_touch_campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("last-touch campaign"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    first_touch_utm = models.JSONField(_("first-touch UTM"), default=dict, blank=True)
    last_touch_utm = models.JSONField(_("last-touch UTM"), default=dict, blank=True)

    level = models.CharField(
        _("level"), max_length=8, choices=Level.choices, default=Level.IQL
    )
    status = models.CharField(
        _("status"), max_length=16, choices=LeadStatus.choices, default=LeadStatus.OPEN
    )
    # Set when a person recycles the lead to nurture: it earns a level again
    # only with activity after this moment.
    recycled_at = models.DateTimeField(_("recycled"), null=True, blank=True)
    score = models.IntegerField(_("score"), default=0)
    engagement_score = models.IntegerField(_("engagement"), default=0)
    fit_score = models.IntegerField(_("fit"), default=0)
    bant_score = models.IntegerField(_("BANT"), default=0)
    score_version = models.PositiveIntegerField(
        _("rule set version"), null=True, blank=True
    )
    temperature = models.CharField(
        _("temperature"),
        max_length=8,
        choices=Temperature.choices,
        default=Temperature.COLD,
    )
    score_breakdown = models.JSONField(_("score breakdown"), default=list, blank=True)
    scored_at = models.DateTimeField(_("scored at"), null=True, blank=True)
    # Set by every ingest, cleared by scoring: the sweeper rescores leads
    # whose recompute task never ran (a broker outage, a lost worker).
    score_stale = models.BooleanField(default=True, editable=False)

    # The sales hand-off: who works the lead and how fast they got to it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_leads",
        db_index=False,
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,
    )
    mql_at = models.DateTimeField(_("became MQL"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    first_contacted_at = models.DateTimeField(_("first contact"), null=True, blank=True)
    # The SLA clock, in business hours, set at each assignment.
    accept_due_at = models.DateTimeField(_("accept by"), null=True, blank=True)
    contact_due_at = models.DateTimeField(_("first contact by"), null=True, blank=True)
    # Set once a breach was escalated to the manager, so it is escalated once.
    accept_escalated_at = models.DateTimeField(null=True, blank=True, editable=False)
    contact_escalated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Speed to lead, wall-clock time from becoming MQL.
    time_to_accept = models.DurationField(_("MQL to accepted"), null=True, blank=True)
    time_to_contact = models.DurationField(
        _("MQL to first contact"), null=True, blank=True
    )

    search_text = models.TextField(editable=False, blank=True, default="")
    last_interaction_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LeadQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("move_lead", _("Can recycle, disqualify, reopen or move a lead")),
        ]
        constraints = [
            # Deduplication rests on these: concurrent first submissions of one
            # address race to insert, and only one insert can win.
            models.UniqueConstraint(
                fields=["email"], condition=~Q(email=""), name="lead_unique_email"
            ),
            models.UniqueConstraint(
                fields=["phone"], condition=~Q(phone=""), name="lead_unique_phone"
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="lead_unique_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["level", "-score"], name="lead_level_score"),
            models.Index(fields=["temperature"], name="lead_temperature"),
            models.Index(fields=["-created_at", "-id"], name="lead_created"),
            models.Index(
                fields=["updated_at"],
                condition=Q(score_stale=True),
                name="lead_score_stale",
            ),
            # The dashboard: speed to lead by MQL time, and its summary's
            # search for leads changed since the last refresh. Speed to lead
            # reads a year of MQLs from the index alone (what it measures and
            # filters on is included), not from a row each across the table.
            models.Index(
                fields=["mql_at"],
                condition=Q(mql_at__isnull=False),
                include=[
                    "accepted_at",
                    "first_contacted_at",
                    "source",
                    "first_touch_campaign",
                    "last_touch_campaign",
                ],
                name="lead_mql_speed",
            ),
            # Most leads have no owner or team, and some no campaign: their
            # foreign keys are indexed only where set, so a rescore's
            # update of a million leads writes no entry for a NULL.
            models.Index(
                fields=["owner"], condition=Q(owner__isnull=False), name="lead_owner"
            ),
            models.Index(
                fields=["team"], condition=Q(team__isnull=False), name="lead_team"
            ),
            models.Index(
                fields=["first_touch_campaign"],
                condition=Q(first_touch_campaign__isnull=False),
                name="lead_first_touch",
            ),
            models.Index(
                fields=["last_touch_campaign"],
                condition=Q(last_touch_campaign__isnull=False),
                name="lead_last_touch",
            ),
            models.Index(fields=["updated_at"], name="lead_updated"),
            models.Index(fields=["scored_at"], name="lead_scored"),
            # The hand-off's pages: a rep's or a team's open sales leads
            # among a million, each one arm of the visibility rule's OR.
            models.Index(
                fields=["owner", "accepted_at"],
                condition=Q(status="open", level__in=["mql", "sql"]),
                name="lead_sales_owner",
            ),
            # The team's arm carries the owner: a pool is "no owner yet".
            models.Index(
                fields=["team", "owner", "accepted_at"],
                condition=Q(status="open", level__in=["mql", "sql"]),
                name="lead_sales_team",
            ),
            # A team's SQL queue in its order: the first page reads a few
            # rows by score, and the count reads the index alone.
            models.Index(
                fields=["team", "-score", "id"],
                include=["owner"],
                condition=Q(
                    status="open", level__in=["mql", "sql"], accepted_at__isnull=False
                ),
                name="lead_team_queue",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("leads:detail", args=[self.pk])

    def accept_breached(self, now=None) -> bool:
        """Not accepted by its deadline (or accepted after it)."""
        if self.accept_due_at is None:
            return False
        done = self.accepted_at or now or timezone.now()
        return done > self.accept_due_at

    def contact_breached(self, now=None) -> bool:
        if self.contact_due_at is None:
            return False
        done = self.first_contacted_at or now or timezone.now()
        return done > self.contact_due_at

    @property
    def display_name(self) -> str:
        return (
            self.full_name
            or " ".join(p for p in (self.first_name, self.last_name) if p)
            or self.email
            or self.phone
            or self.external_id
            or f"#{self.pk}"
        )


class InteractionKind(models.TextChoices):
    FORM_SUBMIT = "form_submit", _("Form submitted")
    NEWSLETTER_SIGNUP = "newsletter_signup", _("Newsletter signup")
    DOCUMENT_DOWNLOAD = "document_download", _("Document download")
    CONSULTATION_REQUEST = "consultation_request", _("Consultation request")
    DEMO_REQUEST = "demo_request", _("Demo request")
    DEMO_VIEW = "demo_view", _("Demo view")
    WEBINAR_REGISTRATION = "webinar_registration", _("Webinar registration")
    EVENT_REGISTRATION = "event_registration", _("Event registration")
    EVENT_ATTENDANCE = "event_attendance", _("Event attendance")
    EVENT_NO_SHOW = "event_no_show", _("Event no-show")
    EMAIL_OPEN = "email_open", _("Email opened")
    EMAIL_CLICK = "email_click", _("Email link clicked")
    PAGE_VISIT = "page_visit", _("Page visit")
    CHAT = "chat", _("Chat conversation")
    SOCIAL_FOLLOW = "social_follow", _("Social follow")
    SUPPORT_CONTACT = "support_contact", _("Support contact")
    SALES_CALL = "sales_call", _("Sales call")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
    EMAIL_BOUNCE = "email_bounce", _("Email bounced")
    OTHER = "other", _("Other")


class Channel(models.TextChoices):
    WEB_FORM = "web_form", _("Web form")
    EMAIL = "email", _("Email")
    EVENT = "event", _("Event")
    API = "api", _("API")
    IMPORT = "import", _("Import")
    MANUAL = "manual", _("Manual entry")
    ADMIN = "admin", _("Admin")
    SOCIAL = "social", _("Social")


def source_label(value: str) -> str:
    """A lead's source as people read it: a channel's code, which a path
    fills in for want of a source ("web_form"), by the channel's name;
    what a campaign or an import named, as it was written."""
    if value in Channel.values:
        return str(Channel(value).label)
    return value


class Interaction(models.Model):
    """One thing a lead did. Append-only: rows are never updated."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="interactions"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=InteractionKind.choices)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    subject = models.CharField(
        _("subject"),
        max_length=200,
        blank=True,
        help_text=_("What it was about: a document, a page, a link."),
    )
    quantity = models.PositiveIntegerField(
        _("quantity"),
        default=1,
        help_text=_("How many times it happened, for imported activity totals."),
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="interactions",
    )
    details = models.JSONField(_("details"), default=dict, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="interaction_unique_idempotency_key",
            ),
        ]
        indexes = [
            # Covering: rescoring reads a lead's log from the index alone,
            # without visiting rows scattered over the table.
            models.Index(
                fields=["lead", "-occurred_at"],
                include=["kind", "quantity", "campaign", "subject"],
                name="interaction_lead_log",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.occurred_at:%Y-%m-%d})"


class StageAction(models.TextChoices):
    AUTOMATIC = "automatic", _("Automatic")
    MOVE = "move", _("Moved by a person")
    RECYCLE = "recycle", _("Recycled to nurture")
    DISQUALIFY = "disqualify", _("Disqualified")
    REOPEN = "reopen", _("Reopened")


class LevelChange(models.Model):
    """Stage history: every level change, automatic or by a person, and
    every disqualification and reopening."""

    # Indexed first in levelchange_lead_time, which serves its lookups.
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="level_changes", db_index=False
    )
    from_level = models.CharField(
        _("from"), max_length=8, choices=Level.choices, blank=True
    )
    to_level = models.CharField(_("to"), max_length=8, choices=Level.choices)
    rule = models.CharField(
        _("rule"),
        max_length=100,
        blank=True,
        help_text=_("The scoring rule that moved the lead, when no person did."),
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    action = models.CharField(
        _("action"),
        max_length=16,
        choices=StageAction.choices,
        default=StageAction.AUTOMATIC,
    )
    reason_code = models.CharField(
        _("reason code"), max_length=16, choices=ReasonCode.choices, blank=True
    )
    reason = models.TextField(_("reason"), blank=True)
    score = models.IntegerField(_("score at change"), null=True, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("level change")
        verbose_name_plural = _("level changes")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-created_at"], name="levelchange_lead_time"),
            # Rules make most changes: only a person's are indexed by who.
            models.Index(
                fields=["changed_by"],
                condition=Q(changed_by__isnull=False),
                name="levelchange_changed_by",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_level or '-'} → {self.to_level}"


class BantCriterion(models.TextChoices):
    BUDGET = "budget", _("Budget")
    AUTHORITY = "authority", _("Authority")
    NEED = "need", _("Need")
    TIMELINE = "timeline", _("Timeline")


class BantStatus(models.TextChoices):
    STATED = "stated", _("Stated by the lead")
    CONFIRMED = "confirmed", _("Confirmed by sales")


class Bant(models.Model):
    """One BANT criterion of a lead: what is known, from whom, since when.

    A criterion with no row is unknown.
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="bant")
    criterion = models.CharField(
        _("criterion"), max_length=16, choices=BantCriterion.choices
    )
    status = models.CharField(_("status"), max_length=16, choices=BantStatus.choices)
    amount = models.DecimalField(
        _("budget amount"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    text = models.CharField(_("details"), max_length=500, blank=True)
    date = models.DateField(_("expected purchase date"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("confirmed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("BANT criterion")
        verbose_name_plural = _("BANT criteria")
        ordering = ["lead", "criterion"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "criterion"], name="bant_one_per_criterion"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_criterion_display()}: {self.get_status_display()}"


class OpportunityStage(models.TextChoices):
    QUALIFICATION = "qualification", _("Qualification")
    PROPOSAL = "proposal", _("Proposal")
    NEGOTIATION = "negotiation", _("Negotiation")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class OpportunityQuerySet(models.QuerySet):
    def visible_to(self, user) -> "OpportunityQuerySet":
        """Opportunities of the leads a user may see, for people whose role
        works with opportunities: built on `Lead.objects.visible_to`."""
        if not user.is_authenticated or not (
            user.is_superuser or user.has_perm("leads.view_opportunity")
        ):
            return self.none()
        return self.filter(lead__in=Lead.objects.visible_to(user).values("pk"))


class Opportunity(models.Model):
    """A deal a sales-qualified lead was converted into; one per lead."""

    lead = models.OneToOneField(
        Lead,
        verbose_name=_("lead"),
        on_delete=models.PROTECT,
        related_name="opportunity",
    )
    name = models.CharField(_("name"), max_length=200)
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="VND")
    expected_close_on = models.DateField(_("expected close"))
    stage = models.CharField(
        _("stage"),
        max_length=16,
        choices=OpportunityStage.choices,
        default=OpportunityStage.QUALIFICATION,
    )
    lost_reason = models.CharField(
        _("lost reason"), max_length=16, choices=ReasonCode.choices, blank=True
    )
    lost_note = models.TextField(_("lost note"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="opportunities",
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="opportunities",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("view_opportunity_amount", _("Can see the money of opportunities")),
        ]
        indexes = [
            models.Index(fields=["stage", "-created_at"], name="opportunity_stage"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("opportunities:detail", args=[self.pk])

    @property
    def is_closed(self) -> bool:
        return self.stage in (OpportunityStage.WON, OpportunityStage.LOST)


class OpportunityStageChange(models.Model):
    """Pipeline history of an opportunity: every stage it entered, from
    which, by whom and when. The first row (no from) is the conversion."""

    opportunity = models.ForeignKey(
        Opportunity,
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="stage_changes",
    )
    from_stage = models.CharField(
        _("from"), max_length=16, choices=OpportunityStage.choices, blank=True
    )
    to_stage = models.CharField(
        _("to"), max_length=16, choices=OpportunityStage.choices
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reason_code = models.CharField(
        _("reason code"), max_length=16, choices=ReasonCode.choices, blank=True
    )
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("opportunity stage change")
        verbose_name_plural = _("opportunity stage changes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_stage or '-'} → {self.to_stage}"


class ActivityKind(models.TextChoices):
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    EMAIL = "email", _("Email")
    NOTE = "note", _("Note")
    TASK = "task", _("Task")


# Activities that are a contact with the lead: each is also an interaction.
CONTACT_KINDS = (ActivityKind.CALL, ActivityKind.MEETING, ActivityKind.EMAIL)


class ActivityQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ActivityQuerySet":
        """Activities of the leads a user may see."""
        if not user.is_authenticated or not (
            user.is_superuser or user.has_perm("leads.view_activity")
        ):
            return self.none()
        return self.filter(lead__in=Lead.objects.visible_to(user).values("pk"))

    def open_tasks(self) -> "ActivityQuerySet":
        return self.filter(kind=ActivityKind.TASK, completed_at__isnull=True)


class Activity(models.Model):
    """What sales did about a lead: a call, a meeting, an email, a note, or
    a task to do by a due time. Calls, meetings and emails are contacts and
    are also recorded as an interaction, which scoring reads."""

    lead = models.ForeignKey(
        Lead,
        verbose_name=_("lead"),
        on_delete=models.CASCADE,
        related_name="activities",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=ActivityKind.choices)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("notes"), blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    interaction = models.OneToOneField(
        Interaction,
        verbose_name=_("interaction"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activity",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("logged by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("logged"), default=timezone.now)

    # Tasks only.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned to"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="lead_tasks",
    )
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True)
    reminder_sent_at = models.DateTimeField(
        _("reminder sent"), null=True, blank=True, editable=False
    )
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("completed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="activity_lead_time"),
            models.Index(
                fields=["assigned_to", "due_at"],
                condition=Q(kind="task", completed_at__isnull=True),
                name="activity_open_task_due",
            ),
            models.Index(
                fields=["remind_at"],
                condition=Q(
                    kind="task",
                    completed_at__isnull=True,
                    reminder_sent_at__isnull=True,
                ),
                name="activity_reminder_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"

    @property
    def is_task(self) -> bool:
        return self.kind == ActivityKind.TASK

    @property
    def is_overdue(self) -> bool:
        return (
            self.is_task
            and self.completed_at is None
            and self.due_at is not None
            and self.due_at < timezone.now()
        )


class RuleField(models.TextChoices):
    ANY = "any", _("Any lead")
    PROVINCE = "city", _("Province or city")
    COUNTRY = "country", _("Country")
    INDUSTRY = "industry", _("Industry")
    SOURCE = "source", _("Source")
    CAMPAIGN = "campaign", _("Campaign")


class AssignmentRule(models.Model):
    """Routes a new MQL to a team (and optionally one rep) by what it is.

    Rules are tried by priority; the first that matches wins. A lead no rule
    matches goes to the only team, when there is exactly one.
    """

    name = models.CharField(_("name"), max_length=100)
    priority = models.PositiveIntegerField(
        _("priority"), default=100, help_text=_("Lower numbers are tried first.")
    )
    field = models.CharField(_("matches on"), max_length=16, choices=RuleField.choices)
    values = models.CharField(
        _("values"),
        max_length=500,
        blank=True,
        help_text=_(
            "Comma-separated; case and accents are ignored "
            "(e.g. Hà Nội, Hai Phong). Not used for a campaign or any lead."
        ),
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.CASCADE, related_name="rules"
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Leave empty to share the leads by round robin."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")
        ordering = ["priority", "pk"]
        # The hand-off's permissions live here, on a model of its own, so
        # that Lead's options stay free for parallel work.
        permissions = [
            ("view_all_leads", _("Can see every lead")),
            ("work_inbox", _("Can work an MQL inbox and SQL queue")),
            ("assign_lead", _("Can assign and reassign leads")),
        ]

    def __str__(self) -> str:
        return self.name


class AssignmentMethod(models.TextChoices):
    RULE = "rule", _("Assignment rule")
    ROUND_ROBIN = "round_robin", _("Round robin")
    MANUAL = "manual", _("By a manager")
    ESCALATION = "escalation", _("SLA escalation")
    CLAIM = "claim", _("Taken from the team pool")


class Assignment(models.Model):
    """One hand-off of a lead to a rep: the assignment history."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="assignments")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rep"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.SET_NULL, null=True
    )
    method = models.CharField(_("how"), max_length=16, choices=AssignmentMethod.choices)
    rule = models.ForeignKey(
        AssignmentRule,
        verbose_name=_("rule"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.rep_id}"


class NotificationKind(models.TextChoices):
    ASSIGNED = "assigned", _("Lead assigned")
    POOLED = "pooled", _("Lead waiting in the team pool")
    ACCEPT_BREACH = "accept_breach", _("Not accepted in time")
    CONTACT_BREACH = "contact_breach", _("Not contacted in time")


class Notification(models.Model):
    """A message to one person in the app (and by email)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=NotificationKind.choices)
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="notifications"
    )
    assignment = models.ForeignKey(
        Assignment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    message = models.CharField(_("message"), max_length=300)
    created_at = models.DateTimeField(_("when"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            # A redelivered task finds the row and sends nothing twice.
            models.UniqueConstraint(
                fields=["assignment", "user", "kind"],
                condition=Q(assignment__isnull=False),
                name="notification_once_per_assignment",
            ),
        ]
        indexes = [
            models.Index(
                fields=["user"],
                condition=Q(read_at__isnull=True),
                name="notification_unread",
            ),
        ]

    def __str__(self) -> str:
        return self.message
