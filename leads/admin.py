"""Admin for leads. Leads are written through the services, never directly.

Adding a lead goes through `lead_ingest` like every other channel; editing
one may correct its profile through `lead_update`. Interactions and level
changes are an append-only log: shown, never added or changed here.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import (
    Assignment,
    AssignmentRule,
    Bant,
    Channel,
    Interaction,
    InteractionKind,
    Lead,
    LevelChange,
    Notification,
    Team,
    TeamMember,
)
from .normalize import normalize_email, normalize_phone
from .selectors import lead_score_lines, lead_search
from .services import (
    EDITABLE_FIELDS,
    PROFILE_FIELDS,
    InteractionData,
    LeadData,
    lead_data_clean,
    lead_ingest,
    lead_update,
)
from .templatetags.leads_tags import (
    score_detail_label,
    score_part_label,
    score_rule_label,
)

ADD_FIELDS = (*EDITABLE_FIELDS, "email_consent", "known_outcome")
DERIVED_FIELDS = (
    "level",
    "status",
    "recycled_at",
    "score",
    "engagement_score",
    "fit_score",
    "bant_score",
    "temperature",
    "breakdown_table",
    "score_version",
    "scored_at",
    "last_interaction_at",
)
RECORD_FIELDS = (
    "email_consent",
    "known_outcome",
    "custom_table",
    "first_touch_campaign",
    "first_touch_utm",
    "last_touch_campaign",
    "last_touch_utm",
    "search_text",
    "created_at",
    "updated_at",
)


class LeadAdminForm(forms.ModelForm):
    """Identity fields are normalised here, so uniqueness is checked on the
    stored form and a clash is a form error rather than a database error."""

    class Meta:
        model = Lead
        fields = ADD_FIELDS

    def clean_email(self):
        email = normalize_email(self.cleaned_data.get("email"))
        self._check_unique("email", email, gettext("Another lead has this email."))
        return email

    def clean_phone(self):
        phone = normalize_phone(self.cleaned_data.get("phone"))
        self._check_unique("phone", phone, gettext("Another lead has this phone."))
        return phone

    def _check_unique(self, name: str, value: str, message: str) -> None:
        others = Lead.objects.filter(**{name: value})
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
        if value and others.exists():
            raise ValidationError(message, code="unique")


class LeadAddForm(LeadAdminForm):
    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            # The ingest's own checks (an email or a phone is needed), raised
            # here so that they show on the form's fields.
            lead_data_clean(self.lead_data())
        return cleaned

    def lead_data(self) -> LeadData:
        values = {name: self.cleaned_data.get(name) or "" for name in EDITABLE_FIELDS}
        values["source"] = values["source"] or Channel.ADMIN
        return LeadData(
            **values,
            email_consent=self.cleaned_data.get("email_consent"),
            known_outcome=self.cleaned_data.get("known_outcome"),
        )


class LeadChangeForm(LeadAdminForm):
    class Meta(LeadAdminForm.Meta):
        fields = EDITABLE_FIELDS

    def clean(self):
        cleaned = super().clean()
        has_identity = cleaned.get("email") or cleaned.get("phone")
        if not (self.errors or has_identity or self.instance.external_id):
            self.add_error(
                "email", gettext("Enter an email address or a phone number.")
            )
        return cleaned


class BantInline(admin.TabularInline):
    """What is known of Budget, Authority, Need and Timeline: shown here,
    changed only through the qualification services."""

    model = Bant
    fields = ("criterion", "status", "amount", "currency", "text", "date")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "email",
        "phone",
        "company",
        "level",
        "score",
        "temperature",
        "source",
        "created_at",
    )
    list_filter = ("level", "status", "temperature", "source", "email_consent")
    search_fields = ("search_text",)
    search_help_text = _("Name, email, phone or company; accents optional.")
    date_hierarchy = "created_at"
    list_per_page = 50
    ordering = ("-created_at", "-id")
    show_full_result_count = False

    def get_inlines(self, request, obj):
        return [BantInline] if obj else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = LeadChangeForm if obj else LeadAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (
                (_("Identity"), {"fields": ("email", "phone")}),
                (_("Profile"), {"fields": PROFILE_FIELDS}),
                (
                    _("Consent and outcome"),
                    {"fields": ("email_consent", "known_outcome")},
                ),
            )
        return (
            (_("Identity"), {"fields": ("email", "phone", "external_id")}),
            (_("Profile"), {"fields": PROFILE_FIELDS}),
            (_("Score (derived)"), {"fields": DERIVED_FIELDS}),
            (_("Record"), {"fields": RECORD_FIELDS, "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("external_id", *DERIVED_FIELDS, *RECORD_FIELDS)

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def get_search_results(self, request, queryset, search_term):
        # The same search as the leads page: folded text, phone in any form.
        return lead_search(queryset, search_term), False

    def save_model(self, request, obj, form, change):
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            lead_update(lead=obj, changes=changes)
            return

        result = lead_ingest(
            data=form.lead_data(),
            interactions=[
                InteractionData(
                    kind=InteractionKind.OTHER,
                    channel=Channel.ADMIN,
                    details={"added_by": request.user.pk},
                )
            ],
        )
        # The admin goes on to log and redirect to `obj`: make it the lead
        # the ingest stored.
        obj.pk = result.lead.pk
        obj.refresh_from_db()
        if not result.created:
            messages.info(request, gettext("An existing lead matched and was updated."))

    @admin.display(description=_("name"), ordering="full_name")
    def name(self, obj):
        return obj.display_name

    @admin.display(description=_("score breakdown"))
    def breakdown_table(self, obj):
        if not obj.score_breakdown:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    score_part_label(line.get("part", "")),
                    score_rule_label(line),
                    score_detail_label(line),
                    line.get("points"),
                )
                for line in lead_score_lines(lead=obj)
            ),
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description=_("custom data"))
    def custom_table(self, obj):
        if not obj.custom:
            return "—"
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.custom, ensure_ascii=False, indent=2)
        )


class AppendOnlyAdmin(admin.ModelAdmin):
    """A log: visible to staff, never added to or edited here; superusers may
    delete rows (for example to honour an erasure request).

    The search box finds rows by their lead, searched as on the leads page.
    """

    search_fields = ("lead__search_text",)
    search_help_text = _("The lead's name, email, phone or company.")

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        leads = lead_search(Lead.objects.visible_to(request.user), search_term)
        return queryset.filter(lead__in=leads.values("pk")), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Interaction)
class InteractionAdmin(AppendOnlyAdmin):
    list_display = (
        "occurred_at",
        "lead",
        "kind",
        "subject",
        "channel",
        "campaign",
        "quantity",
    )
    list_filter = ("kind", "channel", "campaign")
    date_hierarchy = "occurred_at"
    list_select_related = ("lead", "campaign")
    raw_id_fields = ("lead", "campaign")
    show_full_result_count = False


@admin.register(LevelChange)
class LevelChangeAdmin(AppendOnlyAdmin):
    list_display = (
        "created_at",
        "lead",
        "from_level",
        "to_level",
        "action",
        "reason_code",
        "rule",
        "changed_by",
    )
    list_filter = ("action", "to_level", "from_level", "reason_code", "rule")
    date_hierarchy = "created_at"
    list_select_related = ("lead", "changed_by")
    raw_id_fields = ("lead", "changed_by")


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    extra = 1
    autocomplete_fields = ("user",)
    fields = ("user", "capacity", "is_active", "last_assigned_at")
    readonly_fields = ("last_assigned_at",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "manager", "uses_pool")
    search_fields = ("name",)
    autocomplete_fields = ("manager",)
    inlines = [TeamMemberInline]


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "priority", "field", "values", "campaign", "team", "rep")
    list_editable = ("priority",)
    list_filter = ("field", "team", "is_active")
    list_select_related = ("campaign", "team", "rep")
    autocomplete_fields = ("rep",)
    raw_id_fields = ("campaign",)


@admin.register(Assignment)
class AssignmentAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "lead", "rep", "team", "method", "assigned_by")
    list_filter = ("method", "team")
    date_hierarchy = "created_at"
    list_select_related = ("lead", "rep", "team", "assigned_by")
    raw_id_fields = ("lead", "rep", "rule", "assigned_by")


@admin.register(Notification)
class NotificationAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "user", "kind", "lead", "read_at", "emailed_at")
    list_filter = ("kind",)
    list_select_related = ("user", "lead")
    raw_id_fields = ("user", "lead", "assignment")


from . import sales_admin  # noqa: E402, F401  (registers the sales models)
