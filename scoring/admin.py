"""Admin for scoring rules. Only drafts change; a version that scored leads
is shown as it was, so every stored score still names the rules behind it.
Activation goes through `rule_set_activate`, which rescores every lead."""

from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import (
    EngagementRule,
    FitRule,
    RescoreJob,
    RescoreSlice,
    RuleSet,
    RuleSetStatus,
)
from .rulesets import rule_set_activate


def _is_draft(obj: RuleSet | None) -> bool:
    return obj is None or obj.status == RuleSetStatus.DRAFT


class DraftOnlyInline(admin.TabularInline):
    extra = 0

    def has_add_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_delete_permission(request, obj)


class EngagementRuleInline(DraftOnlyInline):
    model = EngagementRule
    fields = ("kind", "campaign", "subject", "points", "cap", "window_cap", "label")
    raw_id_fields = ("campaign",)


class FitRuleInline(DraftOnlyInline):
    model = FitRule
    fields = ("field", "operator", "values", "low", "high", "points", "label")


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "name",
        "status",
        "created_at",
        "activated_at",
        "activated_by",
    )
    list_filter = ("status",)
    search_fields = ("name", "notes")
    inlines = (EngagementRuleInline, FitRuleInline)
    readonly_fields = (
        "status",
        "based_on",
        "created_by",
        "created_at",
        "activated_at",
        "activated_by",
    )
    actions = ("activate",)

    def has_change_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_draft(obj) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("version"), ordering="pk")
    def version(self, obj):
        return f"v{obj.pk}"

    @admin.action(
        description=_("Activate the selected draft and rescore every lead"),
        permissions=["change"],
    )
    def activate(self, request, queryset):
        drafts = list(queryset.filter(status=RuleSetStatus.DRAFT))
        if len(drafts) != 1:
            self.message_user(
                request, gettext("Select exactly one draft."), messages.ERROR
            )
            return
        job = rule_set_activate(rule_set=drafts[0], by=request.user)
        self.message_user(
            request,
            gettext("Rules v%(version)s are in force; rescore job #%(job)s started.")
            % {"version": drafts[0].pk, "job": job.pk},
        )


class RescoreSliceInline(admin.TabularInline):
    model = RescoreSlice
    fields = (
        "first_id",
        "last_id",
        "done_through",
        "status",
        "published_at",
        "heartbeat_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RescoreJob)
class RescoreJobAdmin(admin.ModelAdmin):
    """Bulk rescores: started by activation or the nightly refresh, never
    here."""

    inlines = [RescoreSliceInline]

    list_display = (
        "pk",
        "rule_set",
        "reason",
        "status",
        "done",
        "total",
        "level_changes",
        "created_at",
        "finished_at",
        "created_by",
    )
    list_filter = ("status", "reason")
    list_select_related = ("rule_set", "created_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
