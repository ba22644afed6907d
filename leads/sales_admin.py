"""Admin for sales' records: opportunities, their stage history, activities.

Opportunities are made by converting a lead and move between stages on the
pipeline (through `leads.opportunities`), so here their stage is shown, not
edited; the deal's own details may be corrected.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .admin import AppendOnlyAdmin
from .models import Activity, Opportunity, OpportunityStageChange


class StageChangeInline(admin.TabularInline):
    model = OpportunityStageChange
    fields = (
        "created_at",
        "from_stage",
        "to_stage",
        "changed_by",
        "reason_code",
        "note",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "lead",
        "stage",
        "amount",
        "currency",
        "expected_close_on",
        "owner",
        "created_at",
    )
    list_filter = ("stage", "currency", "team", "lost_reason")
    search_fields = ("name", "lead__search_text")
    search_help_text = _("The deal's name, or the lead's name, email or company.")
    date_hierarchy = "created_at"
    list_select_related = ("lead", "owner")
    raw_id_fields = ("owner",)
    readonly_fields = (
        "lead",
        "stage",
        "lost_reason",
        "lost_note",
        "closed_at",
        "created_at",
        "updated_at",
    )
    fields = (
        "lead",
        "name",
        "amount",
        "currency",
        "expected_close_on",
        "owner",
        "team",
        *readonly_fields[1:],
    )
    inlines = [StageChangeInline]

    def get_queryset(self, request):
        return Opportunity.objects.visible_to(request.user)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Activity)
class ActivityAdmin(AppendOnlyAdmin):
    list_display = (
        "occurred_at",
        "lead",
        "kind",
        "subject",
        "created_by",
        "assigned_to",
        "due_at",
        "reminder_sent_at",
        "completed_at",
    )
    list_filter = ("kind", ("completed_at", admin.EmptyFieldListFilter))
    date_hierarchy = "occurred_at"
    list_select_related = ("lead", "created_by", "assigned_to")
    raw_id_fields = ("lead", "interaction", "created_by", "assigned_to")

    def get_queryset(self, request):
        return Activity.objects.visible_to(request.user)
