from contextvars import ContextVar

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.template.response import SimpleTemplateResponse
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .events import event_promote_waitlist
from .inbound import delivery_requeue
from .models import (
    Campaign,
    ConsentRecord,
    ConsentText,
    EmailCampaign,
    EmailRecipient,
    Event,
    EventRegistration,
    FormField,
    InboundDelivery,
    LeadSource,
    Segment,
    Submission,
    SubmissionStatus,
    WebForm,
)
from .pages import embed_snippet
from .services import submission_requeue

# A read-only field is rendered without the request, yet the embed snippet
# needs this site's absolute address; a context variable carries the request
# of the current thread (or task) without sharing it between requests.
_current_request = ContextVar("webform_admin_request", default=None)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "utm_campaign", "starts_on", "ends_on", "owner")
    list_filter = ("kind", "starts_on")
    search_fields = ("name", "utm_campaign")
    date_hierarchy = "starts_on"
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)


class FormFieldInline(admin.TabularInline):
    model = FormField
    extra = 0


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    list_display = ("form", "version", "purpose", "created_at")
    list_select_related = ("form",)
    readonly_fields = ("form", "version", "created_at")

    def has_change_permission(self, request, obj=None):
        # Records point at the wording agreed to: it is never edited.
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "lead",
        "purpose",
        "given_at",
        "double_opt_in",
        "confirmed_at",
    )
    list_filter = ("double_opt_in", "purpose")
    list_select_related = ("lead",)
    raw_id_fields = ("lead", "submission", "consent_text")
    date_hierarchy = "given_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebForm)
class WebFormAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "campaign", "interaction_kind", "is_active")
    list_filter = ("is_active", "interaction_kind", "campaign")
    search_fields = ("name", "key", "campaign__name")
    list_select_related = ("campaign",)
    autocomplete_fields = ("campaign",)
    readonly_fields = ("embed_snippet", "consent_version", "created_at")
    inlines = [FormFieldInline]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "thank_you_url":
            # A thank-you page typed without a scheme is on a modern site.
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def changeform_view(self, request, *args, **kwargs):
        token = _current_request.set(request)
        try:
            response = super().changeform_view(request, *args, **kwargs)
            # A template response renders after the view returns, when the
            # request would be gone: render it while it is at hand.
            if isinstance(response, SimpleTemplateResponse):
                response.render()
            return response
        finally:
            _current_request.reset(token)

    @admin.display(description=_("embed snippet"))
    def embed_snippet(self, obj):
        if obj is None or obj.pk is None:
            return _("Save the form to get its snippet.")
        request = _current_request.get()
        if request is not None:
            snippet = embed_snippet(request, obj, language=request.LANGUAGE_CODE)
        else:
            action = reverse("campaigns:capture", args=[obj.key])
            snippet = render_to_string(
                "campaigns/webform_embed.html", {"action": action, "form": obj}
            )
        # Shown as code to copy, so the rendered HTML is escaped once more.
        return format_html(
            '<pre style="white-space: pre-wrap; max-width: 60rem">{}</pre>',
            escape(snippet),
        )


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    """The raw inbox: read-only, except sending submissions back to work."""

    list_display = (
        "id",
        "form",
        "status",
        "spam_reason",
        "received_at",
        "processed_at",
        "attempts",
        "lead",
    )
    list_filter = ("status", "spam_reason", "form")
    search_fields = ("=id", "error", "form__name", "form__key")
    date_hierarchy = "received_at"
    list_select_related = ("form", "lead")
    raw_id_fields = ("form", "lead")
    actions = ("reprocess",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_reprocess_permission(self, request):
        return request.user.has_perm("campaigns.change_submission")

    @admin.action(description=_("Re-process"), permissions=["reprocess"])
    def reprocess(self, request, queryset):
        retryable = (SubmissionStatus.PENDING, SubmissionStatus.FAILED)
        ids = list(queryset.filter(status__in=retryable).values_list("pk", flat=True))
        count = submission_requeue(submission_ids=ids)
        self.message_user(
            request,
            ngettext(
                "%(count)d submission sent back to processing.",
                "%(count)d submissions sent back to processing.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "updated_at")
    search_fields = ("name",)
    list_select_related = ("created_by",)
    readonly_fields = ("created_by", "created_at", "updated_at")


@admin.register(EmailCampaign)
class EmailCampaignAdmin(admin.ModelAdmin):
    """Read-mostly: emails are written and sent on their own pages, where
    merge fields are checked and sending goes through the service."""

    list_display = ("name", "campaign", "segment", "status", "created_at", "sent_at")
    list_filter = ("status", "campaign")
    search_fields = ("name", "subject", "campaign__name")
    list_select_related = ("campaign", "segment")
    readonly_fields = (
        "status",
        "links",
        "created_by",
        "created_at",
        "send_started_at",
        "recipients_added_at",
        "sent_at",
    )

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)


@admin.register(EmailRecipient)
class EmailRecipientAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "email_campaign",
        "lead",
        "status",
        "sent_at",
        "opened_at",
        "clicked_at",
        "bounce_kind",
    )
    list_filter = ("status", "bounce_kind", "email_campaign")
    search_fields = ("=id", "email")
    list_select_related = ("email_campaign", "lead")
    raw_id_fields = ("email_campaign", "lead")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "campaign", "starts_at", "capacity", "form")
    list_filter = ("kind", "campaign")
    search_fields = ("name", "campaign__name")
    date_hierarchy = "starts_at"
    list_select_related = ("campaign", "form")
    autocomplete_fields = ("campaign",)
    raw_id_fields = ("form",)
    readonly_fields = ("no_shows_marked_at", "created_at")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # A capacity raised here seats the waitlist as on the event's page.
        event_promote_waitlist(event=obj)


@admin.register(EventRegistration)
class EventRegistrationAdmin(admin.ModelAdmin):
    """Read-only: registrations and attendance are recorded by the event
    pages and the capture path, together with their interactions."""

    list_display = ("event", "lead", "status", "attendance", "registered_at")
    list_filter = ("status", "attendance", "source")
    search_fields = ("event__name", "=lead__id")
    list_select_related = ("event", "lead")
    raw_id_fields = ("event", "lead", "submission", "checked_in_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LeadSource)
class LeadSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "platform", "key", "campaign", "is_active")
    list_filter = ("platform", "is_active")
    search_fields = ("name", "key")
    list_select_related = ("campaign",)
    autocomplete_fields = ("campaign",)
    readonly_fields = ("endpoint", "created_at")

    @admin.display(description=_("endpoint"))
    def endpoint(self, obj):
        if obj is None or obj.pk is None:
            return _("Save the source to get its address.")
        return reverse("inbound:receive", args=[obj.key])


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(admin.ModelAdmin):
    """The raw inbox of lead platforms, read-only like submissions."""

    list_display = ("id", "source", "external_id", "status", "received_at", "lead")
    list_filter = ("status", "source")
    search_fields = ("=id", "=external_id", "error")
    date_hierarchy = "received_at"
    list_select_related = ("source", "lead")
    raw_id_fields = ("source", "lead")
    actions = ("reprocess",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_reprocess_permission(self, request):
        return request.user.has_perm("campaigns.change_inbounddelivery")

    @admin.action(description=_("Re-process"), permissions=["reprocess"])
    def reprocess(self, request, queryset):
        count = delivery_requeue(delivery_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery sent back to processing.",
                "%(count)d deliveries sent back to processing.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
